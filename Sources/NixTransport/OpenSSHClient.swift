import Foundation

/// The ssh-ng transport through the user's own OpenSSH client, run as Nix's libstore runs it
/// (`SSHMaster::startCommand`): `ssh HOST -x`, the words of `NIX_SSHOPTS`, `-i KEY` for the
/// machines file's key, a private known_hosts holding only the pinned host key when there is
/// one, and `-oPermitLocalCommand=yes -oLocalCommand=echo started`, whose line on ssh's
/// stdout says the login succeeded before a protocol byte is sent. Everything else (Match
/// exec, certificates, security keys, GSSAPI, agents) is the user's ssh_config and ssh's own.
///
/// With `master` set, connections go through nix-bridge's own ControlMaster for the host
/// (`OpenSSHMaster`): one login, then `-oControlMaster=no -oControlPath=SOCKET` per
/// connection. It is nil when ssh_config or `NIX_SSHOPTS` set ControlMaster or ControlPath,
/// which are then the user's.
public struct OpenSSHClient: Sendable {
    /// `host` or `user@host`, as the store URI names it.
    public var host: String
    public var port: Int?
    /// The machines file's (or `ssh-key=`) identity file.
    public var identityFile: String?
    /// base64 of a `TYPE KEY` host key line (the machines file's 8th field).
    public var pinnedHostKey: String?
    /// `NIX_SSHOPTS`, split as a shell would (current Nix's `shellSplitString`).
    public var sshOpts: String
    /// The ssh program (`ssh` on PATH).
    public var program: String
    /// How long the login may take before "started" is printed (or the master is up).
    public var connectTimeout: Duration
    /// `Keyword=value` options passed as `-o` unless `NIX_SSHOPTS` sets the keyword (the
    /// caller leaves out those ssh_config sets): the keepalive defaults.
    public var defaultOptions: [String]
    /// The ControlMaster connections share; nil for none of nix-bridge's own.
    public var master: OpenSSHMaster?

    public init(host: String, port: Int? = nil, identityFile: String? = nil, pinnedHostKey: String? = nil,
                sshOpts: String = ProcessInfo.processInfo.environment["NIX_SSHOPTS"] ?? "", program: String = "ssh",
                connectTimeout: Duration = SSHTarget.defaultConnectTimeout, defaultOptions: [String] = [], master: OpenSSHMaster? = nil) {
        self.host = host
        self.port = port
        self.identityFile = identityFile
        self.pinnedHostKey = pinnedHostKey
        self.sshOpts = sshOpts
        self.program = program
        self.connectTimeout = connectTimeout
        self.defaultOptions = defaultOptions
        self.master = master
    }

    var peer: String { "'\(host)' (OpenSSH)" }

    /// This process's `NIX_SSHOPTS`.
    public static var environmentSSHOpts: String { ProcessInfo.processInfo.environment["NIX_SSHOPTS"] ?? "" }

    /// The master actually used: none when `NIX_SSHOPTS` multiplexes itself (`-M`, `-S`,
    /// ControlMaster, ControlPath).
    public var effectiveMaster: OpenSSHMaster? {
        guard let master, let words = try? ShellWords.split(sshOpts) else { return nil }
        if words.contains(where: { $0.hasPrefix("-M") || $0.hasPrefix("-S") }) { return nil }
        let given = Self.optionKeywords(words)
        return given.contains("controlmaster") || given.contains("controlpath") ? nil : master
    }

    /// Where `program` is (`PATH` searched as execvp does); nil when it is not there.
    public var programPath: String? { Posix.findExecutable(program) }

    /// Whether connections share one login: through a master of ours, or one `NIX_SSHOPTS`
    /// asks for (`-S`, `-M`, ControlMaster, ControlPath).
    public var multiplexes: Bool {
        if controlPath != nil { return true }
        guard let words = try? ShellWords.split(sshOpts) else { return false }
        let given = Self.optionKeywords(words)
        return words.contains { $0.hasPrefix("-M") || $0.hasPrefix("-S") } || given.contains("controlpath") || given.contains("controlmaster")
    }

    /// The control socket connections use, when a master of ours is.
    public var controlPath: String? {
        effectiveMaster?.socket(for: [program, host, port.map(String.init) ?? "", identityFile ?? "",
                                      pinnedHostKey ?? "", sshOpts].joined(separator: "\u{0}"))
    }

    /// The keywords `-o` words set (`-oKey=value`, `-o Key=value`, `-o "Key value"`), lowercased.
    static func optionKeywords(_ words: [String]) -> Set<String> {
        var out: Set<String> = [], next = false
        for w in words {
            var option: Substring?
            if next { option = Substring(w); next = false } else if w == "-o" { next = true } else if w.hasPrefix("-o") { option = w.dropFirst(2) }
            if let option, let k = option.split(whereSeparator: { $0 == "=" || $0 == " " || $0 == "\t" }).first {
                out.insert(k.lowercased())
            }
        }
        return out
    }

    /// What every ssh command line of this client starts with: destination, `-x`,
    /// NIX_SSHOPTS, port, key, the pinned-key known_hosts and the default options.
    func commonArguments(knownHostsFile: String?) throws(TransportError) -> [String] {
        var args = [program, host, "-x"]
        let words: [String]
        do { words = try ShellWords.split(sshOpts) } catch {
            throw .spawnFailed(command: program, message: "cannot split NIX_SSHOPTS: \(error)")
        }
        args += words
        if let port { args += ["-p", String(port)] }
        if let identityFile { args += ["-i", identityFile] }
        if let knownHostsFile { args.append("-oUserKnownHostsFile=" + Self.quoted(knownHostsFile)) }
        let given = Self.optionKeywords(words)
        for o in defaultOptions {
            let keyword = o.split(separator: "=").first.map { $0.lowercased() } ?? ""
            if !given.contains(keyword) { args.append("-o" + o) }
        }
        return args
    }

    /// The ssh command line for `command`: through the master's socket when there is one,
    /// else logging in itself with the "started" LocalCommand.
    public func arguments(command: String, knownHostsFile: String?) throws(TransportError) -> [String] {
        var args = try commonArguments(knownHostsFile: knownHostsFile)
        if let controlPath {
            // The master has logged in; should it have just ended, ssh logs in itself.
            args += ["-oControlMaster=no", "-oControlPath=" + Self.quoted(controlPath)]
        } else {
            args += ["-oPermitLocalCommand=yes", "-oLocalCommand=echo started"]
        }
        return args + [command]
    }

    /// A path as one ssh option argument: `%` escaped (ControlPath expands tokens), quoted
    /// when it has blanks.
    static func quoted(_ path: String) -> String {
        let p = path.replacingOccurrences(of: "%", with: "%%")
        return p.contains(where: { $0 == " " || $0 == "\t" }) ? "\"\(p)\"" : p
    }

    /// Runs `command` on the host; returns once ssh has logged in (or, through a master,
    /// once the session is requested: the master has logged in).
    public func connect(command: String) async throws(TransportError) -> ProcessStream {
        if let master = effectiveMaster, let socket = controlPath {
            try master.preparedDirectory()
            let knownHosts = try pinnedHostKey.map { key throws(TransportError) in
                try master.knownHostsFile(socket: socket, line: try Self.hostKeyLine(key, host: host))
            }
            try await master.ensureRunning(self, socket: socket, knownHostsFile: knownHosts)
            return try ProcessStream(try arguments(command: command, knownHostsFile: knownHosts))
        }
        let knownHosts = try pinnedHostKey.map { key throws(TransportError) in try writeKnownHosts(key) }
        defer { if let knownHosts { try? FileManager.default.removeItem(atPath: knownHosts.directory) } }
        let stream = try ProcessStream(try arguments(command: command, knownHostsFile: knownHosts?.file))
        let started: Result<[UInt8], any Error> = await withTaskGroup(of: Result<[UInt8], any Error>?.self) { group in
            group.addTask {
                do { return .success(try await stream.read(exactly: 8)) } catch { return .failure(error) }
            }
            let timeout = connectTimeout
            group.addTask { try? await Task.sleep(for: timeout); return nil }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(TransportError.connectFailed(peer: peer, message: "timed out after \(timeout) logging in"))
        }
        if case .success(let line) = started, line == Array("started\n".utf8) { return stream }
        await stream.close()
        let why = (await stream.finalStderrText()).trimmingCharacters(in: .whitespacesAndNewlines)
        switch started {
        case .failure(let e as TransportError) where why.isEmpty: throw e
        default: throw .connectFailed(peer: peer, message: why.isEmpty ? "ssh exited before logging in" : why)
        }
    }

    /// Asks our master for this host, if one runs, to exit (`ssh -O exit`); masters also end
    /// by themselves `persist` seconds after their last session.
    public func stopMaster() async {
        guard let socket = controlPath, await OpenSSHMaster.isListening(socket) else { return }
        guard let ssh = try? ProcessStream([program, "-O", "exit", "-oControlPath=" + Self.quoted(socket), host]) else { return }
        _ = await ssh.waitForExit()
    }

    /// The `TYPE KEY` line of a machines file's base64 host key field.
    static func hostKeyLine(_ base64: String, host: String) throws(TransportError) -> String {
        guard let bytes = Data(base64Encoded: base64), let line = String(data: bytes, encoding: .utf8) else {
            throw .connectFailed(peer: host, message: "the pinned host key is not valid base64")
        }
        return line.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A private (0700) directory with a known_hosts that holds only the pinned key, as Nix
    /// writes for `-oUserKnownHostsFile`. Its host pattern is `*`: the file serves this one
    /// call, and ssh looks the key up under HostKeyAlias, HostName or `[HostName]:port`,
    /// which need not be the name in the store URI.
    private func writeKnownHosts(_ base64: String) throws(TransportError) -> (directory: String, file: String) {
        let line = try Self.hostKeyLine(base64, host: host)
        let dir = NSTemporaryDirectory() + "/nix-bridge-ssh-" + UUID().uuidString
        let file = dir + "/host-key"
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o700])
            try Data("* \(line)\n".utf8).write(to: URL(fileURLWithPath: file))
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw .spawnFailed(command: program, message: "cannot write \(file): \(error)")
        }
        return (dir, file)
    }
}

/// Splitting a command line into words as a POSIX shell does (quotes and backslashes; no
/// expansion), for `NIX_SSHOPTS`.
public enum ShellWords {
    public struct Unterminated: Error, CustomStringConvertible {
        public var description: String { "unterminated quote" }
    }

    public static func split(_ text: String) throws(Unterminated) -> [String] {
        var words: [String] = [], word = "", inWord = false
        var quote: Character? = nil, escaped = false
        for c in text {
            if escaped { word.append(c); escaped = false; inWord = true; continue }
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"" { escaped = true } else { word.append(c) }
                continue
            }
            switch c {
            case "\\": escaped = true; inWord = true
            case "'", "\"": quote = c; inWord = true
            case " ", "\t", "\n":
                if inWord { words.append(word); word = ""; inWord = false }
            default: word.append(c); inWord = true
            }
        }
        if quote != nil || escaped { throw Unterminated() }
        if inWord { words.append(word) }
        return words
    }
}
