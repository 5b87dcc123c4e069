#if canImport(Glibc)
import Glibc
#endif

/// A `ByteStream` over descriptors we were given: the process's stdin and stdout (a
/// worker-protocol server run as `nix-bridge --stdio`), or one end of a socket pair.
public final class DescriptorStream: ByteStream {
    let io: FileDescriptorStream
    private let isSocket: Bool

    /// - Parameters:
    ///   - isSocket: both descriptors are the same socket: half-close with `shutdown`.
    public init(readFD: Int32, writeFD: Int32, peer: String, isSocket: Bool = false) {
        _ = Posix.ignoreSIGPIPE
        io = FileDescriptorStream(readFD: readFD, writeFD: writeFD, peer: peer)
        self.isSocket = isSocket
    }

    /// Standard input and output.
    public static func standardIO(peer: String = "stdio") -> DescriptorStream {
        DescriptorStream(readFD: 0, writeFD: 1, peer: peer)
    }

    /// Two connected sockets (`socketpair`), each end as a stream.
    public static func pair(peer: String = "socketpair") throws(TransportError) -> (DescriptorStream, DescriptorStream) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw .connectFailed(peer: peer, message: Posix.errorText())
        }
        return (DescriptorStream(readFD: fds[0], writeFD: fds[0], peer: peer + "[0]", isSocket: true),
                DescriptorStream(readFD: fds[1], writeFD: fds[1], peer: peer + "[1]", isSocket: true))
    }

    public func read(maxLength: Int) async throws -> [UInt8] { try await io.read(maxLength: maxLength) }
    public func write(_ bytes: [UInt8]) async throws { try await io.write(bytes) }

    public func closeWrite() async {
        await io.closeWrite(shutdownOnly: isSocket)
    }

    public func close() async {
        let (socket, fd) = (isSocket, io.readFD)
        await io.close { if socket { _ = shutdown(fd, Int32(SHUT_RDWR)) } }
    }
}
