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

    init(target: SSHTarget, command: String, wake: WakePipe, deadline: ContinuousClock.Instant? = nil) {
        self.target = target
        self.command = command
        self.wake = wake
        self.deadline = deadline ?? .now + target.connectTimeout
    }

    func error(_ reason: SSHError.Reason) -> SSHError { SSHError(peer: target.peerDescription, reason: reason) }

    var timeoutSeconds: Double { target.connectTimeout.seconds }

    /// Connects and starts the command. The socket closes when the session is freed.
    func establish() throws(SSHError) -> (SSH2Session, SSH2Channel) {
        let session = try login()
        let fd = session.link.fd
        let channel = try openChannel(session, fd)
        let exec = try retry(session, fd, "exec") { channel.exec(command) }
        if exec != 0 { throw error(.execFailed(command: command, message: session.lastErrorMessage)) }
        if target.serverAliveInterval > 0 { session.configureKeepalive(interval: target.serverAliveInterval) }
        return (session, channel)
    }

    /// The link, handshake, host key check and authentication.
    func login() throws(SSHError) -> SSH2Session {
        let link = try openLink()
        guard let session = SSH2Session(link: link) else {
            link.close()
            throw error(.internalError("libssh2 session init failed"))
        }
        let fd = link.fd
        do throws(SSHError) {
            let pinned = try pinnedKey()
            // Ask for the key type we can verify, as OpenSSH does: libssh2 would otherwise pick
            // its own first choice and a known host would look unknown.
            let known = (pinned.map { [$0.type] } ?? knownKeyTypes()).flatMap(SSH2.hostKeyAlgorithms(forKeyType:))
            session.preferMethods(hostKeyTypes: (known + [SSH2.hostKeyTypes]).joined(separator: ","))
            let rc = try retry(session, fd, "SSH handshake") { session.handshake() }
            if rc != 0 { throw error(.handshake(session.lastErrorMessage)) }
            try verifyHostKey(session, pinned: pinned)
            try authenticate(session, fd)
            return session
        } catch {
            let proxyErr = link.proxyStderr()
            if let via = link.via, case .command = target.proxy {
                throw self.error(.proxy(hop: via, message: error.description + (proxyErr.isEmpty ? "" : "; it said: \(proxyErr)")))
            }
            throw error
        }
    }

    /// A TCP connection, a ProxyCommand's socket pair, or a channel through the jump host.
    func openLink() throws(SSHError) -> SSHLink {
        switch target.proxy {
        case nil:
            switch Posix.connectTCP(host: target.host, port: target.port, deadline: deadline, wakeFD: wake.readFD) {
            case let .success(fd):
                Posix.setNoDelay(fd)
                return SSHLink(fd: fd)
            case .failure(.refused): throw error(.connectionRefused)
            case .failure(.timeout): throw error(.connectTimeout(seconds: timeoutSeconds, phase: "TCP connect"))
            case let .failure(.unresolvable(why)): throw error(.unresolvable(why))
            case let .failure(.other(why)): throw error(.socket(why))
            case .failure(.cancelled): throw error(.closed)
            }
        case let .command(command)?:
            switch SSHLink.proxyCommand(command) {
            case let .success(link): return link
            case let .failure(why): throw error(.proxy(hop: "ProxyCommand '\(command)'", message: "\(why)"))
            }
        case let .jump(hop)?:
            let jump = SSHConnector(target: hop, command: "", wake: wake, deadline: deadline)
            let hopName = "ProxyJump host \(hop.peerDescription)"
            let session: SSH2Session
            do { session = try jump.login() } catch {
                throw self.error(.proxy(hop: hopName, message: error.description))
            }
            var channel: SSH2Channel?
            while channel == nil {
                channel = session.openDirectTCPIP(host: target.host, port: target.port)
                if channel != nil { break }
                guard session.lastErrno == SSH2.eagain else {
                    let why = session.lastErrorMessage
                    throw error(.proxy(hop: hopName, message: "cannot forward to \(target.host):\(target.port): \(why)"))
                }
                do { try jump.waitSocket(session, session.link.fd, "forwarding channel") } catch {
                    throw self.error(.proxy(hop: hopName, message: error.description))
                }
            }
            guard let pair = SSHLink.socketPair() else {
                throw error(.socket("socketpair: \(Posix.errorText())"))
            }
            // The pump reads and writes its end without waiting, polling when stuck.
            Posix.setNonBlocking(pair.1)
            let done = SSHJumpPump.start(session: session, channel: channel!, pairFD: pair.1,
                                         keepalive: hop.serverAliveInterval, name: "ssh jump \(hop.peerDescription)")
            // Closing our end ends the pump; wait (briefly) until the jump session is gone too,
            // so that a closed stream leaves no thread behind still using libssh2.
            return SSHLink(fd: pair.0, via: hopName) { _ = done.wait(timeout: .now() + 2) }
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

    var knownHostsFiles: [String] { target.knownHostsFiles.isEmpty ? SSHConfig.defaultKnownHostsFiles() : target.knownHostsFiles }
    var knownHostsName: String { SSHKnownHosts.lookupName(host: target.host, port: target.port, alias: target.hostKeyAlias) }

    /// Key types recorded for this host in known_hosts.
    func knownKeyTypes() -> [String] {
        SSHKnownHosts.read(files: knownHostsFiles).knownTypes(for: knownHostsName)
    }

    /// A pinned key alone decides; otherwise known_hosts and StrictHostKeyChecking.
    /// Runs before any channel is opened or any key is offered.
    func verifyHostKey(_ session: SSH2Session, pinned: SSHPublicKey?) throws(SSHError) {
        guard let (blob, _) = session.hostKey else { throw error(.handshake("server sent no host key")) }
        let offered = SSHPublicKey(blob: blob)
        let got = offered.fingerprint
        if let pinned {
            if pinned.blob != blob {
                throw error(.hostKeyMismatch(expected: pinned.fingerprint, got: got, source: "pinned in machines file"))
            }
            return
        }
        let files = knownHostsFiles
        let known = SSHKnownHosts.read(files: files)
        let name = knownHostsName
        func refuse(_ reason: SSHError.Reason) -> SSHError {
            var e = error(reason)
            e.notes = known.problems.prefix(5).map { "known_hosts line skipped: \($0)" }
            return e
        }
        var verdict = known.check(name: name, key: offered)
        if verdict == .unknown {
            switch target.strictHostKeyChecking {
            case .yes: throw refuse(.unknownHost(name: name, fingerprint: got, knownHostsFiles: files))
            case .no: return
            case .acceptNew:
                guard let file = files.first else { return }
                // Another connection may have recorded the host meanwhile: its verdict counts.
                if case let .success(now) = SSHKnownHosts.record(name: name, key: offered, in: file, hashed: target.hashKnownHosts) {
                    verdict = now
                }
                if verdict == .unknown { return }
            }
        }
        switch verdict {
        case .match, .unknown: return
        case let .revoked(e):
            throw refuse(.hostKeyRefused(name: name, why: "its key \(got) is marked @revoked at \(e.origin)"))
        case let .mismatch(entries):
            throw refuse(.hostKeyMismatch(expected: entries.map(\.key.fingerprint).joined(separator: " or "), got: got,
                                          source: "known_hosts entry for '\(name)' at \(entries.map(\.origin).joined(separator: ", "))"))
        case let .otherTypes(entries):
            let types = Set(entries.map(\.key.type)).sorted().joined(separator: ", ")
            throw refuse(.hostKeyRefused(name: name, why: "the server offered a \(offered.type) key (\(got)), but \(entries.map(\.origin).joined(separator: ", ")) record this host with \(types) keys only; a known host's key of another type is not accepted (if the host really changed, remove the old entries with ssh-keygen -R '\(name)')"))
        case let .certAuthorityOnly(entries):
            throw refuse(.hostKeyRefused(name: name, why: "known_hosts names it only in @cert-authority lines (\(entries.map(\.origin).joined(separator: ", "))); host certificates need the OpenSSH client, the libssh2 transport cannot check them"))
        }
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
        let note = sawRSA && !SSH2.signsRSAWithSHA2
            ? "libssh2 \(SSH2.version) can sign RSA keys only with SHA-1, which OpenSSH >= 8.8 refuses; use an ed25519 key or libssh2 >= 1.11"
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
            if let c = session.openChannel(window: target.channelWindow) { return c }
            if session.lastErrno != SSH2.eagain { throw error(.channel(session.lastErrorMessage)) }
            try waitSocket(session, fd, "channel open")
        }
    }
}
