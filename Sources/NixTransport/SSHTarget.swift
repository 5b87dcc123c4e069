/// What `StrictHostKeyChecking` allows for hosts missing from known_hosts. A changed key
/// is always refused (stricter than OpenSSH's `no`).
public enum StrictHostKeyChecking: Sendable, Equatable {
    case yes
    /// Accept and record keys of unknown hosts in the first known_hosts file.
    case acceptNew
    /// Accept keys of unknown hosts without recording them.
    case no
}

/// What carries an SSH connection instead of a TCP connection of its own.
public indirect enum SSHProxy: Sendable, Equatable {
    /// A shell command whose stdin and stdout are the connection (ProxyCommand, expanded).
    case command(String)
    /// A direct-tcpip channel through this host's own SSH session (ProxyJump).
    case jump(SSHTarget)
}

/// Everything needed to reach one SSH server and log in.
public struct SSHTarget: Sendable, Equatable {
    /// Host name or address to dial.
    public var host: String
    public var port: Int
    public var user: String
    /// Private key files, tried in order; the public key is `<file>.pub` when present.
    /// ed25519 and ECDSA keys work; RSA keys fail with libssh2 1.10 against OpenSSH ≥ 8.8.
    public var identityFiles: [String]
    /// When true, agent keys are not offered.
    public var identitiesOnly: Bool
    /// ssh-agent socket; nil means `SSH_AUTH_SOCK`.
    public var agentSocket: String?
    /// The machines file's host key field: base64 of a whole OpenSSH public-key line.
    /// When set, it alone decides (known_hosts is not read).
    public var pinnedHostKey: String?
    /// Name the host key is looked up under in known_hosts (OpenSSH `HostKeyAlias`).
    public var hostKeyAlias: String?
    public var knownHostsFiles: [String]
    public var strictHostKeyChecking: StrictHostKeyChecking
    /// Bounds TCP connect, SSH handshake, authentication and starting the command.
    public var connectTimeout: Duration
    /// `connectTimeout` when neither Nix's `connect-timeout` nor ssh_config's `ConnectTimeout`
    /// is set (OpenSSH would wait for the kernel's TCP timeout, minutes). 14 s, so that a
    /// command that gives up on a builder which never answers ends within 15 s, its own work
    /// (starting, the other builders' answers) included.
    public static let defaultConnectTimeout: Duration = .seconds(14)
    /// A session channel's receive window: what libssh2 may hold of a stream nobody reads yet,
    /// and what one stream can have in flight. 2 MiB (OpenSSH's and libssh2's default) keeps
    /// a NAR at 40 MiB/s over a 50 ms round trip; a server of many slow clients at once uses
    /// `servingChannelWindow` to bound its memory instead.
    public var channelWindow = SSHTarget.defaultChannelWindow
    public static let defaultChannelWindow = 2 << 20
    /// 256 KiB: ten slow clients cost 2.5 MiB of windows, not 20; still 25 MiB/s per transfer
    /// at a 10 ms round trip, 5 MiB/s at 50 ms.
    public static let servingChannelWindow = 256 << 10
    /// What a stream reads ahead of its reader (two reads): 256 KiB, or half a smaller window.
    var readAheadLimit: Int { min(256 << 10, max(channelWindow / 2, 32 << 10)) }
    /// The largest single read from the channel: 128 KiB (below glibc's mmap threshold, see
    /// TransferMemory), or a quarter of a smaller window, since libssh2 widens the window by
    /// the size of each read.
    var readChunk: Int { min(128 << 10, max(channelWindow / 4, 16 << 10)) }
    /// Fails a pending read or write that makes no progress for this long; nil waits forever
    /// (a daemon may legitimately be silent while it builds).
    public var ioTimeout: Duration?
    /// Name used in errors and logs (e.g. the ssh_config alias).
    public var alias: String?
    /// How the SSH connection is carried when not by a direct TCP connection.
    public var proxy: SSHProxy?
    /// Seconds between keepalives when the server is quiet; 0 sends none.
    public var serverAliveInterval = 0
    public var serverAliveCountMax = 3
    /// Hosts recorded under accept-new are written hashed (OpenSSH's HashKnownHosts).
    public var hashKnownHosts = false

    public init(host: String, port: Int = 22, user: String, identityFiles: [String] = [],
                identitiesOnly: Bool = false, agentSocket: String? = nil, pinnedHostKey: String? = nil,
                hostKeyAlias: String? = nil, knownHostsFiles: [String] = [],
                strictHostKeyChecking: StrictHostKeyChecking = .yes,
                connectTimeout: Duration = SSHTarget.defaultConnectTimeout, ioTimeout: Duration? = nil, alias: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.identityFiles = identityFiles
        self.identitiesOnly = identitiesOnly
        self.agentSocket = agentSocket
        self.pinnedHostKey = pinnedHostKey
        self.hostKeyAlias = hostKeyAlias
        self.knownHostsFiles = knownHostsFiles
        self.strictHostKeyChecking = strictHostKeyChecking
        self.connectTimeout = connectTimeout
        self.ioTimeout = ioTimeout
        self.alias = alias
    }

    /// "host:port", with the alias in front when it differs.
    public var peerDescription: String {
        let hp = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        if let alias, alias != host { return "\(alias) (\(hp))" }
        return hp
    }
}

/// The libssh2 library loaded at run time (it may differ from the one built against).
public enum SSHLibrary {
    /// E.g. "1.10.0".
    public static var version: String { SSH2.version }
    /// Whether RSA user keys can log in to OpenSSH >= 8.8 (rsa-sha2-256/512, libssh2 >= 1.11).
    public static var signsRSAWithSHA2: Bool { SSH2.signsRSAWithSHA2 }
}
