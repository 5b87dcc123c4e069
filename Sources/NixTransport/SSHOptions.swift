/// The effective options for one host after applying an ssh_config.
public struct SSHOptions: Sendable, Equatable {
    /// The name given (an alias, e.g. "builder1").
    public var host: String
    public var hostName: String
    public var user: String
    public var port: Int
    public var identityFiles: [String]
    public var identityFilesConfigured: Bool
    public var identitiesOnly: Bool
    public var userKnownHostsFiles: [String]
    public var globalKnownHostsFiles: [String]
    public var hostKeyAlias: String?
    public var strictHostKeyChecking: StrictHostKeyChecking
    /// Seconds; nil for none (the transport's default applies).
    public var connectTimeout: Int?
    public var batchMode: Bool
    /// Seconds between keepalives when the server is quiet; 0 sends none.
    public var serverAliveInterval: Int
    /// Keepalives left unanswered before the connection is given up.
    public var serverAliveCountMax: Int
    public var hashKnownHosts = false
    /// The ProxyJump hops, first to last; nil for none.
    public var proxyJump: [SSHJumpSpec]?
    /// ProxyCommand with its tokens expanded; nil for none.
    public var proxyCommand: String?
    /// The options of the last ProxyJump hop (which reaches the earlier hops itself).
    public var jumpHost: [SSHOptions] = []
    /// Every effective value with the file and line it came from, in the order obtained.
    public var settings: [SSHSetting]
    /// Lines that could not be honoured.
    public var warnings: [String] = []

    /// Keywords the libssh2 transport acts on; the others are read and have no effect.
    public static let honouredKeywords: Set<String> = [
        "hostname", "user", "port", "identityfile", "identitiesonly", "userknownhostsfile",
        "globalknownhostsfile", "hostkeyalias", "stricthostkeychecking", "connecttimeout", "batchmode",
        "serveraliveinterval", "serveralivecountmax", "proxyjump", "proxycommand", "canonicalizehostname", "hashknownhosts",
    ]

    /// known_hosts lines that cannot be read ("file:line: why"), in the files this host uses.
    public var knownHostsProblems: [String] {
        SSHKnownHosts.read(files: userKnownHostsFiles + globalKnownHostsFiles).problems
    }

    /// The name known_hosts is searched under (HostKeyAlias, else the host name with its
    /// port) and the "file:line" of each plain entry for it, as the connection would check.
    public var knownHostsEntries: (name: String, entries: [String]) {
        let name = SSHKnownHosts.lookupName(host: hostName, port: port, alias: hostKeyAlias)
        let known = SSHKnownHosts.read(files: userKnownHostsFiles + globalKnownHostsFiles)
        return (name, known.entries(for: name).filter { $0.marker == nil }.map(\.origin))
    }

    /// The connection target, optionally with a machines-file host key pinned.
    public func target(pinnedHostKey: String? = nil, ioTimeout: Duration? = nil) -> SSHTarget {
        var t = SSHTarget(host: hostName, port: port, user: user, identityFiles: identityFiles,
                          identitiesOnly: identitiesOnly, pinnedHostKey: pinnedHostKey, hostKeyAlias: hostKeyAlias,
                          knownHostsFiles: userKnownHostsFiles + globalKnownHostsFiles,
                          strictHostKeyChecking: strictHostKeyChecking,
                          connectTimeout: connectTimeout.flatMap { $0 > 0 ? .seconds($0) : nil } ?? SSHTarget.defaultConnectTimeout,
                          ioTimeout: ioTimeout, alias: host)
        t.serverAliveInterval = serverAliveInterval
        t.serverAliveCountMax = serverAliveCountMax
        t.hashKnownHosts = hashKnownHosts
        if let jump = jumpHost.first {
            t.proxy = .jump(jump.target())
        } else if let proxyCommand {
            t.proxy = .command(proxyCommand)
        }
        return t
    }
}
