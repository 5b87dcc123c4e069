// The socket an SSH session runs over: a TCP connection, a socket pair to a ProxyCommand
// process, or a socket pair pumped into a direct-tcpip channel of a jump host's session.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A connected socket and what has to end with it.
final class SSHLink {
    let fd: Int32
    /// What the link runs through, for errors ("ProxyCommand 'ssh -W ...'").
    let via: String?
    private let stderrFD: Int32
    private let teardown: () -> Void
    private var closed = false

    init(fd: Int32, via: String? = nil, stderrFD: Int32 = -1, teardown: @escaping () -> Void = {}) {
        self.fd = fd
        self.via = via
        self.stderrFD = stderrFD
        self.teardown = teardown
    }

    /// What the proxy process wrote to stderr so far (at most 4 KiB), for errors.
    func proxyStderr() -> String {
        guard stderrFD >= 0 else { return "" }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while out.count < 4096 {
            let n = system_read(stderrFD, &buf, buf.count)
            if n <= 0 { break }
            out += buf[..<n]
        }
        return String(decoding: out.prefix(4096), as: UTF8.self).trimmingTrailingNewlines
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
        if stderrFD >= 0 { Glibc.close(stderrFD) }
        teardown()
    }

    deinit { close() }

    /// Two connected stream sockets, close-on-exec; the first end non-blocking.
    static func socketPair() -> (Int32, Int32)? {
        var sv: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else { return nil }
        Posix.setNonBlocking(sv[0])
        return (sv[0], sv[1])
    }

    /// Runs `command` as OpenSSH runs a ProxyCommand (`exec CMD` by $SHELL, else /bin/sh)
    /// with its stdin and stdout on one end of a socket pair.
    static func proxyCommand(_ command: String) -> Result<SSHLink, Posix.ConnectFailure> {
        guard let (mine, theirs) = socketPair() else { return .failure(.other("socketpair: \(Posix.errorText())")) }
        var errPipe: [Int32] = [-1, -1]
        guard pipe(&errPipe) == 0 else {
            Glibc.close(mine); Glibc.close(theirs)
            return .failure(.other("pipe: \(Posix.errorText())"))
        }
        for fd in errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        Posix.setNonBlocking(errPipe[0])
        let shell = Posix.environment("SHELL").flatMap { access($0, X_OK) == 0 ? $0 : nil } ?? "/bin/sh"
        let spawned = Posix.spawn([shell, "-c", "exec " + command], redirect: [(theirs, 0), (theirs, 1), (errPipe[1], 2)])
        Glibc.close(theirs)
        Glibc.close(errPipe[1])
        switch spawned {
        case let .success(pid):
            return .success(SSHLink(fd: mine, via: "ProxyCommand '\(command)'", stderrFD: errPipe[0]) {
                Posix.terminate(pid)
            })
        case let .failure(why):
            Glibc.close(mine)
            Glibc.close(errPipe[0])
            return .failure(why)
        }
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}

/// Copies bytes between one end of a socket pair and a direct-tcpip channel of a jump
/// host's session, on a thread of its own (which alone then uses that session). Ends when
/// either side closes; then the jump session ends, and its own link with it.
struct SSHJumpPump {
    let session: SSH2Session
    let channel: SSH2Channel
    /// Our end of the pair; the other end carries the inner SSH session.
    let pairFD: Int32
    let keepalive: Int

    /// Starts the pump; the returned semaphore is signalled once it has torn everything down.
    static func start(session: SSH2Session, channel: SSH2Channel, pairFD: Int32,
                      keepalive: Int, name: String) -> DispatchSemaphore {
        let done = DispatchSemaphore(value: 0)
        let box = UncheckedBox<SSHJumpPump?>(SSHJumpPump(session: session, channel: channel, pairFD: pairFD, keepalive: keepalive))
        let thread = Thread {
            Posix.blockSignalsOnThisThread()
            box.value?.run()
            // The session (and its socket) is freed before anyone is told the pump is gone.
            box.value = nil
            done.signal()
        }
        thread.name = name
        thread.start()
        return done
    }

    func run() {
        defer {
            _ = channel.close()
            _ = session.disconnect("closed by nix-bridge")
            Glibc.close(pairFD)
        }
        if keepalive > 0 { session.configureKeepalive(interval: keepalive) }
        var toChannel: [UInt8] = [], toPair: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var channelEOF = false
        while true {
            var progress = false
            // Channel to pair.
            if toPair.isEmpty && !channelEOF {
                let n = buffer.withUnsafeMutableBytes { channel.read(into: $0) }
                if n > 0 {
                    toPair = Array(buffer[..<n])
                    progress = true
                } else if n < 0 && n != Int(SSH2.eagain) {
                    return
                } else if channel.remoteEOF {
                    channelEOF = true
                    shutdown(pairFD, Int32(SHUT_WR))
                    progress = true
                }
            }
            if !toPair.isEmpty {
                let n = toPair.withUnsafeBytes { system_write(pairFD, $0.baseAddress, $0.count) }
                if n > 0 {
                    toPair.removeFirst(n)
                    progress = true
                } else if n < 0 && errno != EAGAIN {
                    return
                }
            }
            // Pair to channel.
            if toChannel.isEmpty {
                let n = buffer.withUnsafeMutableBytes { system_read(pairFD, $0.baseAddress, $0.count) }
                if n > 0 {
                    toChannel = Array(buffer[..<n])
                    progress = true
                } else if n == 0 || (n < 0 && errno != EAGAIN) {
                    // The inner session closed its end: nothing more to carry.
                    return
                }
            }
            if !toChannel.isEmpty {
                let n = toChannel.withUnsafeBytes { channel.write($0) }
                if n > 0 {
                    toChannel.removeFirst(n)
                    progress = true
                } else if n < 0 && n != Int(SSH2.eagain) {
                    return
                }
            }
            if progress { continue }
            if toPair.isEmpty && !channelEOF && channel.hasQueuedData { continue }
            var timeout: Int32 = 1000
            if keepalive > 0, let next = session.sendKeepalive() { timeout = Int32(clamping: max(next, 1) * 1000) }
            let dirs = session.blockDirections
            var sessionEvents = Int16(POLLIN)
            if dirs.outbound { sessionEvents |= Int16(POLLOUT) }
            var pairEvents = Int16(0)
            if toChannel.isEmpty { pairEvents |= Int16(POLLIN) }
            if !toPair.isEmpty { pairEvents |= Int16(POLLOUT) }
            var fds = [pollfd(fd: session.link.fd, events: sessionEvents, revents: 0),
                       pollfd(fd: pairFD, events: pairEvents, revents: 0)]
            _ = system_poll(&fds, until: .now + .milliseconds(Int(timeout)))
            if fds[0].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 && fds[0].revents & Int16(POLLIN) == 0 { return }
        }
    }
}

/// Moves a non-Sendable value to the one thread that uses it from then on.
final class UncheckedBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
