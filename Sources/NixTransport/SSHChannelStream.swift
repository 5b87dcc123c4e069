import Foundation
import Synchronization

/// A command run over SSH (libssh2) as a `ByteStream`: stdin/stdout are the stream, stderr
/// is captured for diagnostics.
///
/// Each stream owns one SSH session on its own thread (libssh2 sessions are not
/// thread-safe). Callers' reads and writes are queued to that thread, which drives the
/// session non-blocking with poll(); it reads ahead up to 256 KiB (`SSHTarget.readAheadLimit`:
/// less with a small window), so a slow reader applies
/// back-pressure through the SSH channel window (`SSHTarget.channelWindow`). What one stream
/// holds of data its reader has not taken is at most those two: a served NAR costs that per
/// client, whatever its size (Docs/Benchmarks.md, "serve-slow").
///
/// Always `close()` a stream: its thread keeps it (and the connection) alive until then.
public final class SSHChannelStream: ByteStream {
    public let target: SSHTarget
    public let command: String
    let shared: Mutex<SSHStreamState>
    let wake = WakePipe()

    static let stderrLimit = 64 << 10

    init(target: SSHTarget, command: String) {
        self.target = target
        self.command = command
        shared = Mutex(SSHStreamState())
    }

    /// Connects, checks the host key, logs in and runs `command` (e.g. "nix-daemon --stdio").
    public static func connect(to target: SSHTarget, command: String) async throws(SSHError) -> SSHChannelStream {
        let stream = SSHChannelStream(target: target, command: command)
        do {
            // Cancelled (an interrupted command): the wake pipe ends the handshake at once.
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
                    stream.shared.withLock { $0.connectWaiter = cont }
                    let thread = Thread {
                        Posix.blockSignalsOnThisThread()
                        SSHSessionThread(stream: stream).run()
                    }
                    thread.name = "ssh \(target.peerDescription)"
                    thread.start()
                }
            } onCancel: {
                stream.wake.wake()
            }
        } catch let error as SSHError {
            throw error
        } catch {
            throw SSHError(peer: target.peerDescription, reason: .internalError("\(error)"))
        }
        return stream
    }

    public func read(maxLength: Int) async throws -> [UInt8] {
        precondition(maxLength > 0, "read(maxLength:) needs a positive length")
        // Fast path: data already buffered.
        if let r = takeOrFail(maxLength) { return try r.get() }
        return try await withCheckedThrowingContinuation { cont in
            let immediate: Result<[UInt8], SSHError>? = shared.withLock { s in
                if let r = s.immediateRead(maxLength) { return r }
                s.readers.append(.init(maxLength: maxLength, continuation: cont))
                return nil
            }
            if let immediate {
                cont.resume(with: immediate.mapError { $0 as Error })
            } else if target.ioTimeout != nil {
                wake.wake()  // so the session thread starts the I/O timeout clock
            }
        }
    }

    private func takeOrFail(_ maxLength: Int) -> Result<[UInt8], SSHError>? {
        var wasFull = false
        let r: Result<[UInt8], SSHError>? = shared.withLock { s in
            wasFull = s.buffered >= target.readAheadLimit
            return s.immediateRead(maxLength)
        }
        if wasFull { wake.wake() }
        return r
    }

    public func write(_ bytes: [UInt8]) async throws {
        if bytes.isEmpty { return }
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            let failure: SSHError? = shared.withLock { s in
                if let f = s.failure { return f }
                if s.closeRequested || s.closeWriteRequested { return SSHError(peer: target.peerDescription, reason: .closed) }
                s.writes.append(.init(bytes: bytes, continuation: cont))
                return nil
            }
            if let failure { cont.resume(throwing: failure) } else { wake.wake() }
        }
    }

    public func closeWrite() async {
        shared.withLock { $0.closeWriteRequested = true }
        wake.wake()
    }

    /// Ends the session: sends EOF, waits briefly for the command's exit status, disconnects.
    public func close() async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let done = shared.withLock { s in
                s.closeRequested = true
                if s.finished { return true }
                s.closeWaiters.append(cont)
                return false
            }
            if done { cont.resume() } else { wake.wake() }
        }
    }

    /// Closes the stream and returns how the remote command ended, when the server said.
    public func waitForExit() async -> SSHExitStatus? {
        await closeWrite()
        await close()
        return exitStatus
    }

    /// The command's stderr so far (the last 64 KiB), for error messages.
    public var stderrText: String { shared.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

    /// Set after `close()` when the server reported it.
    public var exitStatus: SSHExitStatus? { shared.withLock { $0.exit } }

    /// Negotiated cipher and MAC (client to server), e.g. for benchmarks.
    public var algorithms: (cipher: String, mac: String) {
        shared.withLock { ($0.cipher ?? "?", $0.mac ?? "?") }
    }
}

/// State shared between callers and the session thread, always under the mutex.
struct SSHStreamState: ~Copyable {
    struct Reader { var maxLength: Int; var continuation: CheckedContinuation<[UInt8], Error> }
    struct Writer { var bytes: [UInt8]; var continuation: CheckedContinuation<Void, Error> }

    var connectWaiter: CheckedContinuation<Void, Error>?
    /// Data read ahead, in the chunks libssh2 filled: a reader asking for at least a whole
    /// chunk gets that array itself, so a large transfer is not copied on its way through.
    var chunks: [[UInt8]] = []
    /// Bytes of `chunks[0]` already taken.
    var head = 0
    var buffered = 0
    var readers: [Reader] = []
    var writes: [Writer] = []
    var eofReceived = false
    var closeWriteRequested = false
    var closeRequested = false
    var closeWaiters: [CheckedContinuation<Void, Never>] = []
    var failure: SSHError?
    var finished = false
    var stderr: [UInt8] = []
    var exit: SSHExitStatus?
    var cipher: String?
    var mac: String?

    /// Data, EOF or the failure if a read can complete now (and no earlier reader waits).
    mutating func immediateRead(_ maxLength: Int) -> Result<[UInt8], SSHError>? {
        guard readers.isEmpty else { return nil }
        if buffered > 0 { return .success(take(maxLength)) }
        if eofReceived { return .success([]) }
        if let failure { return .failure(failure) }
        return nil
    }

    mutating func append(_ chunk: [UInt8]) {
        guard !chunk.isEmpty else { return }
        chunks.append(chunk)
        buffered += chunk.count
    }

    /// Up to `maxLength` bytes. A whole chunk that fits is returned alone, as it is: a large
    /// transfer then passes through without a copy.
    mutating func take(_ maxLength: Int) -> [UInt8] {
        if head == 0, let first = chunks.first, first.count <= maxLength {
            chunks.removeFirst()
            buffered -= first.count
            return first
        }
        var out: [UInt8] = []
        out.reserveCapacity(min(maxLength, buffered))
        while out.count < maxLength, !chunks.isEmpty {
            let n = min(maxLength - out.count, chunks[0].count - head)
            out += chunks[0][head..<head + n]
            head += n
            if head == chunks[0].count {
                chunks.removeFirst()
                head = 0
            }
        }
        buffered -= out.count
        return out
    }
}

extension SSHChannelStream {
    /// Connects to `host` as ssh_config `config` resolves it (HostName, Port, User, keys,
    /// known_hosts, HostKeyAlias...), as Nix does for `ssh-ng://host`. `pinnedHostKey` is the
    /// machines file's base64 host key field, if any.
    public static func connect(host: String, config: SSHConfig, pinnedHostKey: String? = nil,
                               ioTimeout: Duration? = nil, command: String) async throws(SSHError) -> SSHChannelStream {
        let target = config.resolve(host: host).target(pinnedHostKey: pinnedHostKey, ioTimeout: ioTimeout)
        return try await connect(to: target, command: command)
    }
}
