/// Why an SSH connection or channel failed, with the peer it was talking to.
public struct SSHError: Error, Sendable, CustomStringConvertible {
    /// "host:port" as dialled (plus the alias, if one was used).
    public var peer: String
    public var reason: Reason
    /// Further facts that may explain the failure (e.g. known_hosts lines that were skipped).
    public var notes: [String] = []

    public enum Reason: Sendable, Equatable {
        /// Name resolution failed.
        case unresolvable(String)
        case connectionRefused
        /// No TCP connection or no SSH handshake within the connect timeout.
        case connectTimeout(seconds: Double, phase: String)
        /// Other socket-level failure (errno text).
        case socket(String)
        /// The SSH handshake failed (no common algorithms, garbage banner...).
        case handshake(String)
        /// The host key differs from the pinned or known one; fingerprints are "SHA256:...".
        case hostKeyMismatch(expected: String, got: String, source: String)
        /// No known_hosts entry for the host and StrictHostKeyChecking is yes.
        case unknownHost(name: String, fingerprint: String, knownHostsFiles: [String])
        /// Every key was refused. `tried` lists key files and agent keys; `note` explains
        /// a known cause (e.g. RSA keys with libssh2 1.10).
        case authenticationFailed(user: String, tried: [String], note: String?)
        case channel(String)
        case execFailed(command: String, message: String)
        /// The connection dropped while the stream was in use.
        case peerClosed(String)
        /// No progress on a pending read or write within the I/O timeout.
        case ioTimeout(seconds: Double)
        /// ServerAliveCountMax keepalives in a row went unanswered (`seconds` of silence).
        case serverNotResponding(seconds: Double)
        /// The stream was closed locally.
        case closed
        case internalError(String)
        /// known_hosts refuses the key for another reason than a changed key.
        case hostKeyRefused(name: String, why: String)
        /// A ProxyJump hop or the ProxyCommand failed; `hop` names it.
        case proxy(hop: String, message: String)
    }

    public var description: String {
        notes.isEmpty ? summary : summary + "; " + notes.joined(separator: "; ")
    }

    var summary: String {
        switch reason {
        case let .unresolvable(why): "ssh \(peer): cannot resolve host: \(why)"
        case .connectionRefused: "ssh \(peer): connection refused"
        case let .connectTimeout(s, phase): "ssh \(peer): timed out after \(s) s (\(phase))"
        case let .socket(why): "ssh \(peer): \(why)"
        case let .handshake(why): "ssh \(peer): SSH handshake failed: \(why)"
        case let .hostKeyMismatch(expected, got, source):
            "ssh \(peer): host key mismatch: expected \(expected) (\(source)), server offered \(got); refusing to connect"
        case let .unknownHost(name, fp, files):
            "ssh \(peer): host key for '\(name)' (\(fp)) is not in \(files.isEmpty ? "any known_hosts file" : files.joined(separator: ", ")) and StrictHostKeyChecking is yes"
        case let .authenticationFailed(user, tried, note):
            "ssh \(peer): authentication as '\(user)' refused; tried: \(tried.isEmpty ? "no keys" : tried.joined(separator: ", "))" + (note.map { "; \($0)" } ?? "")
        case let .channel(why): "ssh \(peer): cannot open channel: \(why)"
        case let .execFailed(command, why): "ssh \(peer): cannot run '\(command)': \(why)"
        case let .peerClosed(why): "ssh \(peer): connection closed by peer (\(why))"
        case let .ioTimeout(s): "ssh \(peer): no progress for \(s) s"
        case let .serverNotResponding(s): "ssh \(peer): Timeout, server not responding (no answer to keepalives for \(s) s)"
        case .closed: "ssh \(peer): stream closed"
        case let .internalError(why): "ssh \(peer): \(why)"
        case let .proxy(hop, message): "ssh \(peer): via \(hop): \(message)"
        case let .hostKeyRefused(name, why): "ssh \(peer): host key for '\(name)' refused: \(why)"
        }
    }
}

/// How the remote command ended.
public struct SSHExitStatus: Sendable, Equatable, CustomStringConvertible {
    public var code: Int32
    /// Signal name without "SIG" when the command was killed.
    public var signal: String?
    public init(code: Int32, signal: String? = nil) {
        self.code = code
        self.signal = signal
    }
    public var description: String { signal.map { "killed by SIG\($0)" } ?? "exit code \(code)" }
}
