import Foundation

/// The ssh-ng transport through the user's own OpenSSH client, run as Nix's libstore runs it
/// (`SSHMaster::startCommand`): `ssh HOST -x`, the words of `NIX_SSHOPTS`, `-i KEY` for the
/// machines file's key, a private known_hosts holding only the pinned host key when there is
/// one, and `-oPermitLocalCommand=yes -oLocalCommand=echo started`, whose line on ssh's
/// stdout says the login succeeded before a protocol byte is sent. Everything else (Match
/// exec, certificates, security keys, GSSAPI, agents, ControlMaster) is the user's ssh_config
/// and ssh's own.
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
    /// How long the login may take before "started" is printed.
    public var connectTimeout: Duration

    public init(host: String, port: Int? = nil, identityFile: String? = nil, pinnedHostKey: String? = nil,
                sshOpts: String = ProcessInfo.processInfo.environment["NIX_SSHOPTS"] ?? "", program: String = "ssh",
                connectTimeout: Duration = SSHTarget.defaultConnectTimeout) {
        self.host = host
        self.port = port
        self.identityFile = identityFile
        self.pinnedHostKey = pinnedHostKey
        self.sshOpts = sshOpts
        self.program = program
        self.connectTimeout = connectTimeout
    }

    /// The ssh command line for `command`, with `knownHostsFile` holding the pinned key.
    public func arguments(command: String, knownHostsFile: String?) throws(TransportError) -> [String] {
        var args = [program, host, "-x"]
        do { args += try ShellWords.split(sshOpts) } catch {
            throw .spawnFailed(command: program, message: "cannot split NIX_SSHOPTS: \(error)")
        }
        if let port { args += ["-p", String(port)] }
        if let identityFile { args += ["-i", identityFile] }
        if let knownHostsFile { args.append("-oUserKnownHostsFile=" + knownHostsFile) }
        args += ["-oPermitLocalCommand=yes", "-oLocalCommand=echo started", command]
        return args
    }

    /// Runs `command` on the host; returns once ssh has logged in.
    public func connect(command: String) async throws(TransportError) -> ProcessStream {
        let peer = "'\(host)' (OpenSSH)"
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
        let why = stream.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
        switch started {
        case .failure(let e as TransportError) where why.isEmpty: throw e
        default: throw .connectFailed(peer: peer, message: why.isEmpty ? "ssh exited before logging in" : why)
        }
    }

    /// A private (0700) directory with a known_hosts that holds only the pinned key, as Nix
    /// writes for `-oUserKnownHostsFile`. Its host pattern is `*`: the file serves this one
    /// call, and ssh looks the key up under HostKeyAlias, HostName or `[HostName]:port`,
    /// which need not be the name in the store URI.
    private func writeKnownHosts(_ base64: String) throws(TransportError) -> (directory: String, file: String) {
        guard let bytes = Data(base64Encoded: base64), let line = String(data: bytes, encoding: .utf8) else {
            throw .connectFailed(peer: host, message: "the pinned host key is not valid base64")
        }
        let dir = NSTemporaryDirectory() + "/nix-bridge-ssh-" + UUID().uuidString
        let file = dir + "/host-key"
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o700])
            try Data("* \(line.trimmingCharacters(in: .whitespacesAndNewlines))\n".utf8)
                .write(to: URL(fileURLWithPath: file))
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
