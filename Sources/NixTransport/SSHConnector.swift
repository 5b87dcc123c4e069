// The connect phase of an SSH session, run on the session's own thread: TCP, handshake,
// host key, authentication, exec. Everything is non-blocking with poll(), bounded by the
// connect timeout, and aborted early when the stream is closed meanwhile.
import Foundation
import NixCore
#if canImport(Glibc)
import Glibc
#endif

struct SSHConnector {
    let target: SSHTarget
    let command: String
    let wake: WakePipe
    let deadline: ContinuousClock.Instant

    init(target: SSHTarget, command: String, wake: WakePipe) {
        self.target = target
        self.command = command
        self.wake = wake
        deadline = .now + target.connectTimeout
    }

    func error(_ reason: SSHError.Reason) -> SSHError { SSHError(peer: target.peerDescription, reason: reason) }

    var timeoutSeconds: Double { target.connectTimeout.seconds }

    /// Connects and starts the command; the caller owns the returned socket.
    func establish() throws(SSHError) -> (SSH2Session, SSH2Channel, Int32) {
        let fd: Int32
        switch Posix.connectTCP(host: target.host, port: target.port, deadline: deadline, wakeFD: wake.readFD) {
        case let .success(s): fd = s
        case .failure(.refused): throw error(.connectionRefused)
        case .failure(.timeout): throw error(.connectTimeout(seconds: timeoutSeconds, phase: "TCP connect"))
        case let .failure(.unresolvable(why)): throw error(.unresolvable(why))
        case let .failure(.other(why)): throw error(.socket(why))
        case .failure(.cancelled): throw error(.closed)
        }
        Posix.setNoDelay(fd)
        do throws(SSHError) {
            guard let session = SSH2Session() else { throw error(.internalError("libssh2 session init failed")) }
            let pinned = try pinnedKey()
            // Ask for the key type we can verify, as OpenSSH does: libssh2 would otherwise pick
            // its own first choice and a known host would look unknown.
            let known = pinned.map { [$0.type] } ?? knownKeyTypes()
            session.preferMethods(hostKeyTypes: (known + [SSH2.hostKeyTypes]).joined(separator: ","))
            let rc = try retry(session, fd, "SSH handshake") { session.handshake(socket: fd) }
            if rc != 0 { throw error(.handshake(session.lastErrorMessage)) }
            try verifyHostKey(session, pinned: pinned)
            try authenticate(session, fd)
            let channel = try openChannel(session, fd)
            let exec = try retry(session, fd, "exec") { channel.exec(command) }
            if exec != 0 { throw error(.execFailed(command: command, message: session.lastErrorMessage)) }
            return (session, channel, fd)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Repeats a libssh2 call while it says EAGAIN, waiting on the socket in between.
    func retry(_ session: SSH2Session, _ fd: Int32, _ phase: String, _ call: () -> Int32) throws(SSHError) -> Int32 {
        while true {
            let rc = call()
            if rc != SSH2.eagain { return rc }
            try waitSocket(session, fd, phase)
        }
    }

    func waitSocket(_ session: SSH2Session, _ fd: Int32, _ phase: String) throws(SSHError) {
        let dirs = session.blockDirections
        var events = Int16(0)
        if dirs.inbound || !dirs.outbound { events |= Int16(POLLIN) }
        if dirs.outbound { events |= Int16(POLLOUT) }
        var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)]
        let n = system_poll(&fds, until: deadline)
        if n == 0 { throw error(.connectTimeout(seconds: timeoutSeconds, phase: phase)) }
        if fds[1].revents != 0 { throw error(.closed) }
    }

    func pinnedKey() throws(SSHError) -> SSHPublicKey? {
        guard let field = target.pinnedHostKey else { return nil }
        do { return try SSHPublicKey(machinesFileField: field) } catch {
            throw self.error(.internalError("pinned host key: \(error)"))
        }
    }

    /// Key types recorded for this host in plain (unhashed) known_hosts lines.
    func knownKeyTypes() -> [String] {
        let name = target.hostKeyAlias ?? target.host
        let names: Set<String> = target.hostKeyAlias != nil || target.port == 22 ? [name] : ["[\(name)]:\(target.port)"]
        var types: [String] = []
        let files = target.knownHostsFiles.isEmpty ? SSHConfig.defaultKnownHostsFiles() : target.knownHostsFiles
        for file in files {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8), text.utf8.count < 16 << 20 else { continue }
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ", maxSplits: 2)
                guard f.count >= 2, !f[0].hasPrefix("#"), !f[0].hasPrefix("@") else { continue }
                if f[0].split(separator: ",").contains(where: { names.contains(String($0)) }), !types.contains(String(f[1])) {
                    types.append(String(f[1]))
                }
            }
        }
        return types
    }

    /// A pinned key alone decides; otherwise known_hosts and StrictHostKeyChecking.
    /// Runs before any channel is opened or any key is offered.
    func verifyHostKey(_ session: SSH2Session, pinned: SSHPublicKey?) throws(SSHError) {
        guard let (blob, type) = session.hostKey else { throw error(.handshake("server sent no host key")) }
        let got = SSHPublicKey.fingerprint(blob)
        if let pinned {
            if pinned.blob != blob {
                throw error(.hostKeyMismatch(expected: pinned.fingerprint, got: got, source: "pinned in machines file"))
            }
            return
        }
        guard let kh = SSH2KnownHosts(session: session) else { throw error(.internalError("knownhost init failed")) }
        let files = target.knownHostsFiles.isEmpty ? SSHConfig.defaultKnownHostsFiles() : target.knownHostsFiles
        for file in files where FileManager.default.fileExists(atPath: file) { _ = kh.read(file: file) }
        let name = target.hostKeyAlias ?? target.host
        let port: Int32 = target.hostKeyAlias != nil ? -1 : Int32(target.port)
        switch kh.check(host: name, port: port, key: blob, hostKeyType: type) {
        case .match: return
        case .mismatch:
            throw error(.hostKeyMismatch(expected: "the key in \(files.joined(separator: ", "))", got: got,
                                         source: "known_hosts entry for '\(name)'"))
        case .notFound, .failure:
            switch target.strictHostKeyChecking {
            case .yes: throw error(.unknownHost(name: name, fingerprint: got, knownHostsFiles: files))
            case .no: return
            case .acceptNew:
                let entry = port < 0 || port == 22 ? name : "[\(name)]:\(port)"
                if let file = files.first {
                    appendLine("\(entry) \(SSHPublicKey(blob: blob).openSSHLine)\n", to: file)
                }
            }
        }
    }

    func appendLine(_ line: String, to file: String) {
        let url = URL(fileURLWithPath: file)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: file) { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        guard let h = try? FileHandle(forWritingTo: url) else { return }
        defer { try? h.close() }
        _ = try? h.seekToEnd()
        try? h.write(contentsOf: Data(line.utf8))
    }

    /// Agent keys (unless IdentitiesOnly), then key files, as OpenSSH orders them.
    func authenticate(_ session: SSH2Session, _ fd: Int32) throws(SSHError) {
        let user = target.user
        var list: String?
        while true {
            list = session.authList(user: user)
            if list != nil || session.lastErrno != SSH2.eagain { break }
            try waitSocket(session, fd, "authentication")
        }
        if session.authenticated { return }
        if let list, !list.split(separator: ",").contains("publickey") {
            throw error(.authenticationFailed(user: user, tried: [], note: "server allows only: \(list)"))
        }
        var tried: [String] = []
        var sawRSA = false
        if !target.identitiesOnly || target.agentSocket != nil,
           target.agentSocket != nil || ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"] != nil,
           let agent = SSH2Agent(session: session, socketPath: target.agentSocket), agent.connect() {
            for id in agent.identities() {
                let isRSA = SSHPublicKey.blobType(id.blob) == "ssh-rsa"
                sawRSA = sawRSA || isRSA
                tried.append("agent key '\(id.comment)'\(isRSA ? " (RSA)" : "")")
                if try retry(session, fd, "authentication", { agent.userauth(user: user, identity: id) }) == 0 { return }
            }
        }
        for file in target.identityFiles {
            guard FileManager.default.isReadableFile(atPath: file) else {
                tried.append("\(file) (missing)")
                continue
            }
            let rsa = Self.isRSAKeyFile(file)
            sawRSA = sawRSA || rsa
            let pub = FileManager.default.fileExists(atPath: file + ".pub") ? file + ".pub" : nil
            tried.append(file + (rsa ? " (RSA)" : ""))
            let rc = try retry(session, fd, "authentication") {
                session.authFromFile(user: user, publicKey: pub, privateKey: file, passphrase: nil)
            }
            if rc == 0 { return }
        }
        let note = sawRSA
            ? "RSA keys do not work with libssh2 1.10 against OpenSSH >= 8.8 (it signs with ssh-rsa/SHA-1, which the server refuses); use an ed25519 or ECDSA key"
            : nil
        throw error(.authenticationFailed(user: user, tried: tried, note: note))
    }

    /// Recognises RSA keys in PEM ("BEGIN RSA") and OpenSSH format (key type in the clear).
    static func isRSAKeyFile(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        if text.contains("BEGIN RSA PRIVATE KEY") { return true }
        if let pub = try? String(contentsOfFile: path + ".pub", encoding: .utf8) { return pub.hasPrefix("ssh-rsa ") }
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined().prefix(200)
        guard let head = try? Base64.decode(body.prefix(body.count / 4 * 4)) else { return false }
        return head.count > 7 && String(decoding: head, as: UTF8.self).contains("ssh-rsa")
    }

    func openChannel(_ session: SSH2Session, _ fd: Int32) throws(SSHError) -> SSH2Channel {
        while true {
            if let c = session.openChannel() { return c }
            if session.lastErrno != SSH2.eagain { throw error(.channel(session.lastErrorMessage)) }
            try waitSocket(session, fd, "channel open")
        }
    }
}
