import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A listening Unix-domain socket, as Nix's daemon has at `daemon-socket/socket`: made with
/// the permissions asked for before its name appears (bound under a temporary name, then
/// renamed), or inherited from systemd (socket activation). Connections are accepted on a
/// thread of its own; `close` wakes it.
public final class UnixSocketListener: Sendable {
    public let path: String
    let fd: Int32
    /// Whether the socket file is ours to remove (not systemd's).
    let ownsPath: Bool
    private let wake = WakePipe()
    private let closed = Mutex(false)
    private let queue = DispatchQueue(label: "accept")

    /// Binds `path` with permission bits `mode` and listens. A socket file left behind by a
    /// process that is gone is replaced; one that still answers is an error.
    public init(path: String, mode: UInt32) throws(TransportError) {
        _ = Posix.ignoreSIGPIPE
        self.path = path
        ownsPath = true
        if access(path, F_OK) == 0 {
            if (try? UnixSocketStream(path: path)) != nil {
                throw .connectFailed(peer: path, message: "another process is listening on this socket")
            }
            unlink(path)
        }
        let temporary = path + ".\(getpid()).new"
        let fd = try Self.bound(temporary)
        guard chmod(temporary, mode_t(mode)) == 0, rename(temporary, path) == 0 else {
            let message = Posix.errorText()
            unlink(temporary)
            Glibc.close(fd)
            throw .connectFailed(peer: path, message: message)
        }
        guard listen(fd, 128) == 0 else {
            let message = Posix.errorText()
            unlink(path)
            Glibc.close(fd)
            throw .connectFailed(peer: path, message: "listen: \(message)")
        }
        self.fd = fd
    }

    /// A socket systemd listens on for us (`LISTEN_FDS`, from descriptor 3); its file stays.
    public init(inherited fd: Int32, path: String) {
        _ = Posix.ignoreSIGPIPE
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        self.fd = fd
        self.path = path
        ownsPath = false
    }

    /// The socket systemd passed (`LISTEN_PID` is us, `LISTEN_FDS` is 1), if any.
    public static func systemdSocket() -> Int32? {
        guard let pid = Posix.environment("LISTEN_PID"), pid_t(pid) == getpid(),
              Posix.environment("LISTEN_FDS") == "1" else { return nil }
        return 3
    }

    private static func bound(_ path: String) throws(TransportError) -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.utf8.count < capacity else {
            throw .connectFailed(peer: path, message: "socket path longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .connectFailed(peer: path, message: Posix.errorText()) }
        unlink(path)
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let message = Posix.errorText()
            Glibc.close(fd)
            throw .connectFailed(peer: path, message: "bind: \(message)")
        }
        return fd
    }

    /// The next connection, or nil once the listener is closed.
    public func accept() async throws(TransportError) -> UnixSocketStream? {
        let result: Result<Int32?, TransportError> = await withCheckedContinuation { cont in
            queue.async { [self] in cont.resume(returning: acceptBlocking()) }
        }
        guard let client = try result.get() else { return nil }
        return UnixSocketStream(accepted: client, path: path)
    }

    private func acceptBlocking() -> Result<Int32?, TransportError> {
        while true {
            if closed.withLock({ $0 }) { return .success(nil) }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)]
            _ = system_poll(&fds, until: nil)
            if closed.withLock({ $0 }) { return .success(nil) }
            guard fds[0].revents != 0 else { continue }
            let client = retryingOnInterrupt { Glibc.accept(fd, nil, nil) }
            if client >= 0 {
                // Not inherited by the programs the service runs (a builder's ssh, nix-daemon).
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                return .success(client)
            }
            let e = errno
            // A client that gave up before we took it, or no descriptors left for now.
            if [EAGAIN, ECONNABORTED, EMFILE, ENFILE, EPROTO].contains(e) {
                if e == EMFILE || e == ENFILE { usleep(100_000) }
                continue
            }
            return .failure(.io(peer: path, operation: "accept", message: Posix.errorText(e)))
        }
    }

    /// Stops accepting (a pending `accept` returns nil), closes the socket and removes its
    /// file unless systemd made it.
    public func close() {
        let first = closed.withLock { c in defer { c = true }; return !c }
        guard first else { return }
        if ownsPath { unlink(path) }
        wake.wake()
        queue.async { [fd] in _ = Glibc.close(fd) }
    }
}
