import NixCore
import NixTransport
import NixWire

/// Opens stores from their URIs the way Nix does: `ssh-ng://` runs the remote program
/// (`nix-daemon` unless `remote-program` says otherwise) with `--stdio` over SSH; `daemon`
/// and `unix://` use a daemon socket; `local` / `local?root=` / a path run a local
/// `nix-daemon --stdio --store ...`.
public struct StoreOpener: Sendable {
    /// The parsed ssh_config (`~/.ssh/config` unless told otherwise).
    public var sshConfig: SSHConfig
    /// Pinned host keys by store URI host (from the machines file), base64 of the key line.
    public var pinnedHostKeys: [String: String]
    /// SSH identity files by host (the machines file's ssh key field).
    public var identityFiles: [String: String]
    /// Nix's `connect-timeout` when set: bounds the TCP connect, SSH handshake and login,
    /// and then the worker handshake. Nil: ssh_config's `ConnectTimeout`, else
    /// `SSHTarget.defaultConnectTimeout` (14 s).
    public var connectTimeout: Duration?
    /// The SSH channel window of every libssh2 connection (nil: `SSHTarget.defaultChannelWindow`).
    public var sshChannelWindow: Int?
    /// Nix's `stalled-download-timeout`: a request (other than a build) or a NAR transfer
    /// that receives and sends nothing for this long fails, and its connection is closed.
    /// Nil waits forever.
    public var stalledTimeout: Duration?
    /// The program run for local stores.
    public var localDaemon: String
    public var maxConnections: Int
    /// The `ssh-transport` setting; a store URI's `ssh-transport` parameter wins.
    public var sshTransport: SSHTransport = .auto
    /// Where the openssh transport keeps its ControlMasters; nil starts none.
    public var openSSHMaster: OpenSSHMaster? = OpenSSHMaster()
    /// Whether `sshConfig` is the file the user's `ssh` reads (`-F` of `NIX_SSHOPTS`, else
    /// its defaults): only then may `auto` send NARs through that client, as it then reaches
    /// the same hosts with the same settings.
    public var sshConfigIsOpenSSHs = false
    /// Whether `auto` may send NARs through OpenSSH's client at all. A server of many
    /// clients keeps them on libssh2: there `sshChannelWindow` bounds what each transfer
    /// holds for a slow client, while ssh and its ControlMaster buffer megabytes per session.
    public var narsMayUseOpenSSH = true
    /// `NIX_SSHOPTS`: the words the openssh transport adds to every ssh command line.
    public var nixSSHOpts: String = OpenSSHClient.environmentSSHOpts

    public init(sshConfig: SSHConfig = SSHConfig(), pinnedHostKeys: [String: String] = [:],
                identityFiles: [String: String] = [:], connectTimeout: Duration? = nil,
                stalledTimeout: Duration? = .seconds(300),
                localDaemon: String = "nix-daemon", maxConnections: Int = 1) {
        self.sshConfig = sshConfig
        self.pinnedHostKeys = pinnedHostKeys
        self.identityFiles = identityFiles
        self.connectTimeout = connectTimeout
        self.stalledTimeout = stalledTimeout
        self.localDaemon = localDaemon
        self.maxConnections = maxConnections
    }

    /// ServerAliveInterval when ssh_config sets none (OpenSSH sends no keepalives then): with
    /// the default ServerAliveCountMax 3, a link that died is given up after a minute.
    public static let defaultServerAliveInterval = 15

    /// The command Nix runs on an ssh-ng host.
    public static func remoteCommand(for uri: StoreURI) -> String {
        var cmd = (uri[parameter: "remote-program"] ?? "nix-daemon") + " --stdio"
        if let store = uri[parameter: "remote-store"] { cmd += " --store " + shellQuote(store) }
        return cmd
    }

    static func shellQuote(_ s: String) -> String {
        "'" + s.replacingAll("'", with: "'\\''") + "'"
    }

    /// A store client for `uri` (connections open on first use).
    public func store(_ uri: StoreURI, logs: (@Sendable (LogEvent) -> Void)? = nil) throws(StoreError) -> RemoteStore {
        let peer = uri.description
        let timeouts = DaemonConnection.Timeouts(handshake: handshakeTimeout(uri), stalled: stalledTimeout)
        func connecting(_ open: @escaping @Sendable () async throws -> any ByteStream)
            -> @Sendable () async throws(StoreError) -> DaemonConnection {
            { () async throws(StoreError) -> DaemonConnection in
                let stream: any ByteStream
                do { stream = try await open() } catch { throw StoreError.wrap(error, peer: peer) }
                return try await DaemonConnection.open(stream: stream, peer: peer, timeouts: timeouts, logs: logs)
            }
        }
        return RemoteStore(uri: uri, maxConnections: maxConnections, connectForNAR: try narStreamOpener(uri).map(connecting),
                           connect: connecting(try streamOpener(uri)))
    }

    /// A second way to the store for NAR transfers, when they take another client than the
    /// rest (`SSHTransport.narChoice`); nil when they go the same way.
    func narStreamOpener(_ uri: StoreURI) throws(StoreError) -> (@Sendable () async throws -> any ByteStream)? {
        guard uri.scheme == .sshNG, try sshClient(uri).client == .libssh2, try narSSHClient(uri).client == .openssh else { return nil }
        let client = openSSHClient(uri)
        let command = StoreOpener.remoteCommand(for: uri)
        return { try await client.connect(command: command) }
    }

    /// Which SSH client carries an ssh-ng store's NAR transfers, and why (for `ping`).
    public func narSSHClient(_ uri: StoreURI) throws(StoreError) -> (client: SSHTransport, reason: String) {
        try transport(uri).narChoice(for: sshOptions(uri), openSSHUnusable: openSSHUnusable(uri))
    }

    /// Why the user's OpenSSH client cannot stand in for libssh2 on this host, or nil.
    func openSSHUnusable(_ uri: StoreURI) -> String? {
        if !narsMayUseOpenSSH { return "a server keeps each slow client's NAR within libssh2's channel window" }
        if !sshConfigIsOpenSSHs { return "nix-bridge reads another ssh_config than ssh" }
        let client = openSSHClient(uri)
        if !client.multiplexes && !sshConfigMultiplexes(uri) { return "no ControlMaster (each NAR connection would cost a login)" }
        if client.programPath == nil { return "no '\(client.program)' on PATH" }
        return nil
    }

    /// Whether ssh_config gives the host a ControlMaster of the user's own (not `no`, a
    /// ControlPath other than `none`).
    func sshConfigMultiplexes(_ uri: StoreURI) -> Bool {
        // The first value obtained is the one ssh uses.
        let settings = sshOptions(uri).settings
        func value(_ keyword: String) -> String? {
            settings.first { $0.keyword == keyword }.map { $0.arguments.first?.lowercased() ?? "" }
        }
        guard let master = value("controlmaster"), let path = value("controlpath") else { return false }
        return master != "no" && path != "none"
    }

    /// How to make one byte stream to the store's daemon.
    func streamOpener(_ uri: StoreURI) throws(StoreError) -> @Sendable () async throws -> any ByteStream {
        switch uri.scheme {
        case .sshNG:
            let command = StoreOpener.remoteCommand(for: uri)
            if try sshClient(uri).client == .openssh {
                let client = openSSHClient(uri)
                return { try await client.connect(command: command) }
            }
            let target = sshTarget(uri)
            return { try await SSHChannelStream.connect(to: target, command: command) }
        case .ssh:
            throw .unsupportedStore(uri.description, reason: "ssh:// (the legacy serve protocol) is not supported yet; use ssh-ng://")
        case .daemon:
            return { try UnixSocketStream() }
        case .unix:
            let path = uri.authority
            return { try UnixSocketStream(path: path) }
        case .local:
            var args = ["--stdio"]
            if !uri.parameters.isEmpty { args += ["--store", uri.description] }
            let program = localDaemon
            let argv = args
            return { try ProcessStream([program] + argv) }
        case .file, .http, .https, .auto:
            throw .unsupportedStore(uri.description, reason: "not a worker-protocol store (use ssh-ng://, unix://, daemon or local)")
        }
    }

    /// The effective ssh_config options for an ssh-ng URI (its user and port act as ssh's -l and -p).
    public func sshOptions(_ uri: StoreURI) -> SSHOptions {
        sshConfig.resolve(host: uri.authority, user: uri.user, port: uri.port)
    }

    /// Which SSH client reaches an ssh-ng store, and why (for `ping`).
    public func sshClient(_ uri: StoreURI) throws(StoreError) -> (client: SSHTransport, reason: String) {
        try transport(uri).choice(for: sshOptions(uri))
    }

    /// The `ssh-transport` setting, or the store URI's parameter of that name.
    func transport(_ uri: StoreURI) throws(StoreError) -> SSHTransport {
        guard let given = uri[parameter: "ssh-transport"] else { return sshTransport }
        do { return try SSHTransport(parsing: given) } catch {
            throw .unsupportedStore(uri.description, reason: "ssh-transport: \(error)")
        }
    }

    /// The user's OpenSSH client for the URI, with what Nix passes it: user and port from the
    /// URI, the machines file's key and pinned host key, NIX_SSHOPTS. Added: the keepalive
    /// defaults the libssh2 transport has (unless ssh_config sets them), and nix-bridge's own
    /// ControlMaster unless ssh_config sets ControlMaster or ControlPath for the host.
    public func openSSHClient(_ uri: StoreURI) -> OpenSSHClient {
        let set = Set(sshOptions(uri).settings.map(\.keyword))
        let target = sshTarget(uri)
        var defaults: [String] = []
        if !set.contains("serveraliveinterval") { defaults.append("ServerAliveInterval=\(target.serverAliveInterval)") }
        if !set.contains("serveralivecountmax") { defaults.append("ServerAliveCountMax=\(target.serverAliveCountMax)") }
        let userMultiplexes = set.contains("controlmaster") || set.contains("controlpath")
        return OpenSSHClient(host: uri.user.map { "\($0)@" + uri.authority } ?? uri.authority, port: uri.port,
                             identityFile: uri[parameter: "ssh-key"] ?? identityFiles[uri.authority],
                             pinnedHostKey: uri[parameter: "base64-ssh-public-host-key"] ?? pinnedHostKeys[uri.authority],
                             sshOpts: nixSSHOpts,
                             connectTimeout: target.connectTimeout, defaultOptions: defaults,
                             master: userMultiplexes ? nil : openSSHMaster)
    }

    /// How long the worker handshake may take once the transport is up: the connect timeout
    /// (for ssh-ng, the host's effective one), as a daemon that does not answer its first
    /// bytes is as unreachable as one that does not accept the connection.
    /// With neither `connect-timeout` nor ssh_config's ConnectTimeout set, 60 s: a loaded
    /// builder can take well over the 14 s connect default to start `nix-daemon --stdio`.
    func handshakeTimeout(_ uri: StoreURI) -> Duration {
        if let connectTimeout { return connectTimeout }
        if uri.scheme == .sshNG, let s = sshOptions(uri).connectTimeout, s > 0 { return .seconds(s) }
        return .seconds(60)
    }

    /// SSH options for the URI: ssh_config for the host, then what the URI and machines
    /// file say (they win, as in Nix where they become ssh command-line options).
    func sshTarget(_ uri: StoreURI) -> SSHTarget {
        let opts = sshOptions(uri)
        var target = opts.target(pinnedHostKey: uri[parameter: "base64-ssh-public-host-key"] ?? pinnedHostKeys[uri.authority])
        if let key = uri[parameter: "ssh-key"] ?? identityFiles[uri.authority] {
            target.identityFiles = [key]
            target.identitiesOnly = true
        }
        if let connectTimeout { target.connectTimeout = connectTimeout }
        if let sshChannelWindow { target.channelWindow = sshChannelWindow }
        // A build keeps the daemon silent for as long as it runs, so only keepalives can tell
        // a dead link from a long build: they are on unless ssh_config says otherwise.
        if !opts.settings.contains(where: { $0.keyword == "serveraliveinterval" }) {
            target.serverAliveInterval = Self.defaultServerAliveInterval
        }
        if target.alias == nil { target.alias = uri.authority }
        return target
    }
}

extension String {
    func replacingAll(_ a: String, with b: String) -> String {
        split(separator: Character(a), omittingEmptySubsequences: false).joined(separator: b)
    }
}
