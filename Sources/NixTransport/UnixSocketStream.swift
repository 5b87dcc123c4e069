#if canImport(Glibc)
import Glibc
#endif

/// A connection to a Unix-domain socket, e.g. the local Nix daemon's
/// `/nix/var/nix/daemon-socket/socket`, as a `ByteStream`.
public final class UnixSocketStream: ByteStream {
    /// The default socket of a multi-user Nix install.
    public static let nixDaemonSocket = "/nix/var/nix/daemon-socket/socket"

    public let path: String
    let io: FileDescriptorStream

    public init(path: String = UnixSocketStream.nixDaemonSocket) throws(TransportError) {
        _ = Posix.ignoreSIGPIPE
        self.path = path
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.utf8.count < capacity else {
            throw .connectFailed(peer: path, message: "socket path longer than \(capacity - 1) bytes")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .connectFailed(peer: path, message: Posix.errorText()) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let message = Posix.errorText()
            Glibc.close(fd)
            throw .connectFailed(peer: path, message: message)
        }
        io = FileDescriptorStream(readFD: fd, writeFD: fd, peer: "unix:\(path)")
    }

    /// A connection accepted by a `UnixSocketListener`.
    init(accepted fd: Int32, path: String) {
        _ = Posix.ignoreSIGPIPE
        self.path = path
        io = FileDescriptorStream(readFD: fd, writeFD: fd, peer: "client of unix:\(path)")
    }

    public func read(maxLength: Int) async throws -> [UInt8] { try await io.read(maxLength: maxLength) }
    public func write(_ bytes: [UInt8]) async throws { try await io.write(bytes) }

    public func closeWrite() async {
        await io.closeWrite(shutdownOnly: true)
    }

    public func close() async {
        await io.close { [io] in _ = shutdown(io.readFD, Int32(SHUT_RDWR)) }
    }
}
