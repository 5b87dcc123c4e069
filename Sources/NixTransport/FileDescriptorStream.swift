import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Blocking reads and writes on file descriptors, each direction on its own serial queue so
/// a pending read never holds up a write. Shared by ProcessStream and UnixSocketStream.
final class FileDescriptorStream: Sendable {
    let readFD: Int32
    let writeFD: Int32
    let peer: String
    private let readQueue: DispatchQueue
    private let writeQueue: DispatchQueue
    private let state = Mutex(State())
    /// Largest single read.
    static let readChunk = 128 << 10

    private struct State {
        var writeClosed = false
        /// The write descriptor itself was closed (ProcessStream's stdin): never close it twice,
        /// its number may already belong to someone else.
        var writeFDClosed = false
        var closed = false
    }

    init(readFD: Int32, writeFD: Int32, peer: String) {
        self.readFD = readFD
        self.writeFD = writeFD
        self.peer = peer
        readQueue = DispatchQueue(label: "read \(peer)")
        writeQueue = DispatchQueue(label: "write \(peer)")
    }

    func read(maxLength: Int) async throws(TransportError) -> [UInt8] {
        precondition(maxLength > 0, "read(maxLength:) needs a positive length")
        let result: Result<[UInt8], TransportError> = await withCheckedContinuation { cont in
            readQueue.async { [self] in
                if state.withLock({ $0.closed }) { return cont.resume(returning: .failure(.closed(peer: peer))) }
                // Uninitialised and below glibc's mmap threshold (TransferMemory): no zeroing
                // and no fresh pages to fault in for every read.
                let capacity = min(maxLength, Self.readChunk)
                var n = 0
                let buf = [UInt8](unsafeUninitializedCapacity: capacity) { b, count in
                    n = system_read(readFD, b.baseAddress, capacity)
                    count = max(n, 0)
                }
                if n >= 0 { return cont.resume(returning: .success(buf)) }
                let e = errno
                if state.withLock({ $0.closed }) { return cont.resume(returning: .failure(.closed(peer: peer))) }
                cont.resume(returning: .failure(.io(peer: peer, operation: "read", message: Posix.errorText(e))))
            }
        }
        return try result.get()
    }

    func write(_ bytes: [UInt8]) async throws(TransportError) {
        let result: Result<Void, TransportError> = await withCheckedContinuation { cont in
            writeQueue.async { [self] in
                if state.withLock({ $0.closed || $0.writeClosed }) { return cont.resume(returning: .failure(.closed(peer: peer))) }
                var offset = 0
                while offset < bytes.count {
                    let n = bytes.withUnsafeBytes { system_write(writeFD, $0.baseAddress! + offset, $0.count - offset) }
                    if n > 0 { offset += n; continue }
                    let e = errno
                    let reason: TransportError = e == EPIPE || e == ECONNRESET
                        ? .peerClosed(peer: peer, message: Posix.errorText(e))
                        : .io(peer: peer, operation: "write", message: Posix.errorText(e))
                    return cont.resume(returning: .failure(reason))
                }
                cont.resume(returning: .success(()))
            }
        }
        try result.get()
    }

    /// Once no write is in flight, ends the write side: closes the write descriptor (pipes)
    /// or, when `shutdownOnly`, shuts the socket down for writing.
    func closeWrite(shutdownOnly: Bool) async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            writeQueue.async { [self] in
                let first = state.withLock { s in
                    defer { s.writeClosed = true; if !shutdownOnly && !s.closed { s.writeFDClosed = true } }
                    return !s.writeClosed && !s.closed
                }
                if first {
                    if shutdownOnly { _ = shutdown(writeFD, Int32(SHUT_WR)) } else { Glibc.close(writeFD) }
                }
                cont.resume()
            }
        }
    }

    /// Marks the stream closed and closes the descriptors once both queues are idle.
    /// `unblock` must make a pending read return (kill the process, shut the socket down).
    func close(unblock: @Sendable () -> Void) async {
        let first = state.withLock { s in defer { s.closed = true }; return !s.closed }
        guard first else { return }
        unblock()
        let (r, w) = (readFD, writeFD)
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            writeQueue.async { [self] in
                // The peer sees the end of its input now, not once a pending read returns: a
                // `nix-daemon --stdio` blocked reading acts on nothing else (SIGTERM only
                // sets its flag), and would never write what would end that read.
                let closeW = w != r && state.withLock { s in defer { s.writeFDClosed = true }; return !s.writeFDClosed }
                if closeW { Glibc.close(w) }
                readQueue.async {
                    Glibc.close(r)
                    cont.resume()
                }
            }
        }
    }
}

/// Failures of the local transports (processes, Unix sockets).
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    case spawnFailed(command: String, message: String)
    case connectFailed(peer: String, message: String)
    case io(peer: String, operation: String, message: String)
    case peerClosed(peer: String, message: String)
    case closed(peer: String)

    public var description: String {
        switch self {
        case let .spawnFailed(command, message): "cannot start '\(command)': \(message)"
        case let .connectFailed(peer, message): "cannot connect to \(peer): \(message)"
        case let .io(peer, operation, message): "\(peer): \(operation) failed: \(message)"
        case let .peerClosed(peer, message): "\(peer): closed by peer (\(message))"
        case let .closed(peer): "\(peer): stream closed"
        }
    }
}
