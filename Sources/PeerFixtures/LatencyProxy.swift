import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A userspace TCP proxy on 127.0.0.1 that forwards to `127.0.0.1:targetPort`, delaying
/// every chunk by `delay` in each direction (so the round trip grows by 2 × delay) without
/// limiting throughput. `tc netem` is not available here; this stands in for it.
public final class LatencyProxy: @unchecked Sendable {
    public let port: Int
    public let targetPort: Int
    public let delay: Duration
    private let listenFD: Int32
    private let lock = NSLock()
    private var sockets: [Int32] = []
    private var stopped = false

    public init(targetPort: Int, delay: Duration) throws {
        self.targetPort = targetPort
        self.delay = delay
        signal(SIGPIPE, SIG_IGN)
        (listenFD, port) = try Self.listenOnLoopback(what: "latency proxy")
        Thread { [self] in
            Self.blockSignals()
            acceptLoop()
        }.start()
    }

    /// Stops accepting and cuts every forwarded connection.
    public func stop() {
        let fds = lock.withLock { () -> [Int32] in
            if stopped { return [] }
            stopped = true
            return sockets + [listenFD]
        }
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    deinit { stop() }

    /// Signals must not interrupt the proxy's blocking calls (nor land on its threads).
    static func blockSignals() {
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)
    }

    /// A listening TCP socket on 127.0.0.1 at a port the kernel picks: (descriptor, port).
    static func listenOnLoopback(what: String) throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = loopback(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok, listen(fd, 64) == 0 else {
            close(fd)
            throw Fleet.FleetError(message: "\(what): cannot listen: \(errno)")
        }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return addr
    }

    private func acceptLoop() {
        while true {
            let client = system_accept(listenFD)
            if client < 0 { break }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var addr = Self.loopback(port: targetPort)
            let rc = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else { close(client); close(upstream); continue }
            var one: Int32 = 1
            for fd in [client, upstream] {
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            let alive = lock.withLock { () -> Bool in
                if stopped { return false }
                sockets += [client, upstream]
                return true
            }
            guard alive else { close(client); close(upstream); break }
            let done = DispatchGroup()
            for (from, to) in [(client, upstream), (upstream, client)] {
                let pipe = DelayedPipe(delay: delay)
                done.enter(); done.enter()
                Thread { Self.blockSignals(); pipe.pump(from: from); done.leave() }.start()
                Thread { Self.blockSignals(); pipe.drain(to: to); done.leave() }.start()
            }
            done.notify(queue: .global()) { [self] in
                lock.withLock { sockets.removeAll { $0 == client || $0 == upstream } }
                close(client)
                close(upstream)
            }
        }
        close(listenFD)
    }
}

/// One direction of a proxied connection: chunks are released `delay` after they arrived.
private final class DelayedPipe: @unchecked Sendable {
    let delay: Duration
    private let cond = NSCondition()
    private var queue: [(due: ContinuousClock.Instant, data: [UInt8]?)] = []
    private var queued = 0
    private static let limit = 16 << 20

    init(delay: Duration) { self.delay = delay }

    func pump(from fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 256 << 10)
        while true {
            let n = buf.withUnsafeMutableBytes { system_read(fd, $0.baseAddress, $0.count) }
            let chunk: [UInt8]? = n > 0 ? Array(buf[..<n]) : nil
            cond.lock()
            while queued > Self.limit { cond.wait() }
            queue.append((ContinuousClock.now + delay, chunk))
            queued += chunk?.count ?? 0
            cond.broadcast()
            cond.unlock()
            if chunk == nil { return }
        }
    }

    func drain(to fd: Int32) {
        while true {
            cond.lock()
            while queue.isEmpty { cond.wait() }
            let (due, data) = queue.removeFirst()
            queued -= data?.count ?? 0
            cond.broadcast()
            cond.unlock()
            let wait = ContinuousClock.now.duration(to: due)
            if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.attoseconds) / 1e18 + Double(wait.components.seconds)) }
            guard let data else {
                shutdown(fd, Int32(SHUT_WR))
                return
            }
            var off = 0
            while off < data.count {
                let n = data.withUnsafeBytes { system_write(fd, $0.baseAddress! + off, data.count - off) }
                if n <= 0 {
                    // The other side is gone: keep consuming so the reader can finish.
                    off = data.count
                    break
                }
                off += n
            }
        }
    }
}
