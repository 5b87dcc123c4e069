import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy on 127.0.0.1 to `127.0.0.1:targetPort` that can go silent: it stops
/// forwarding in both directions but keeps every socket open, so the client sees neither a
/// reset nor an end of file, as behind a link that dropped. Silence starts at once
/// (`goSilent`), from the first byte (`silentFromStart`), or once the server has sent a
/// given number of bytes (`goSilent(afterServerBytes:)`).
public final class SilentProxy: @unchecked Sendable {
    public let port: Int
    public let targetPort: Int
    private let listenFD: Int32
    private let cond = NSCondition()
    private var sockets: [Int32] = []
    private var stopped = false
    private var silent: Bool
    /// Server-to-client bytes still forwarded before silence (nil: no such limit).
    private var serverBudget: Int?
    private var accepted = 0

    public init(targetPort: Int, silentFromStart: Bool = false) throws {
        self.targetPort = targetPort
        silent = silentFromStart
        signal(SIGPIPE, SIG_IGN)
        (listenFD, port) = try LatencyProxy.listenOnLoopback(what: "silent proxy")
        Thread { [self] in
            LatencyProxy.blockSignals()
            acceptLoop()
        }.start()
    }

    /// Stops forwarding now, on every connection (open sockets stay open).
    public func goSilent() {
        cond.withLock { silent = true; cond.broadcast() }
    }

    /// Forwards `count` more bytes from the server, then goes silent.
    public func goSilent(afterServerBytes count: Int) {
        cond.withLock { serverBudget = count; cond.broadcast() }
    }

    /// Forwards again.
    public func resume() {
        cond.withLock { silent = false; serverBudget = nil; cond.broadcast() }
    }

    /// Connections accepted so far.
    public var connections: Int { cond.withLock { accepted } }

    /// Stops accepting and closes every connection.
    public func stop() {
        let fds = cond.withLock { () -> [Int32] in
            if stopped { return [] }
            stopped = true
            cond.broadcast()
            return sockets + [listenFD]
        }
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    deinit { stop() }

    private func acceptLoop() {
        while true {
            let client = system_accept(listenFD)
            if client < 0 { break }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var addr = LatencyProxy.loopback(port: targetPort)
            let rc = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else { close(client); close(upstream); continue }
            let alive = cond.withLock { () -> Bool in
                if stopped { return false }
                sockets += [client, upstream]
                accepted += 1
                return true
            }
            guard alive else { close(client); close(upstream); break }
            let done = DispatchGroup()
            for (from, to, fromServer) in [(client, upstream, false), (upstream, client, true)] {
                done.enter()
                Thread { [self] in
                    LatencyProxy.blockSignals()
                    pump(from: from, to: to, fromServer: fromServer)
                    done.leave()
                }.start()
            }
            done.notify(queue: .global()) { [self] in
                cond.withLock { sockets.removeAll { $0 == client || $0 == upstream } }
                close(client)
                close(upstream)
            }
        }
        close(listenFD)
    }

    /// Waits while silent; nil once stopped. Returns how many of `n` bytes may pass now
    /// (`n` 0: only waits).
    private func allowance(_ n: Int, fromServer: Bool) -> Int? {
        cond.lock()
        defer { cond.unlock() }
        while true {
            if stopped { return nil }
            if !silent {
                guard fromServer, let budget = serverBudget else { return n }
                if n == 0 { return 0 }
                if budget > 0 {
                    let k = min(budget, n)
                    serverBudget = budget - k
                    return k
                }
                silent = true
                serverBudget = nil
            }
            cond.wait()
        }
    }

    private func pump(from: Int32, to: Int32, fromServer: Bool) {
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            // Nothing is read while silent, so the sender's socket buffers fill as on a dead link.
            guard allowance(0, fromServer: fromServer) != nil else { break }
            let n = buf.withUnsafeMutableBytes { system_read(from, $0.baseAddress, $0.count) }
            if n <= 0 {
                shutdown(to, Int32(SHUT_WR))
                break
            }
            var off = 0
            while off < n {
                guard let k = allowance(n - off, fromServer: fromServer) else { return }
                let w = buf.withUnsafeBytes { system_write(to, $0.baseAddress! + off, k) }
                if w <= 0 { return }
                off += w
            }
        }
    }
}
