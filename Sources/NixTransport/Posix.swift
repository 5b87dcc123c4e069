// Small POSIX pieces shared by the transports (sockets, poll, a wake-up pipe).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum Posix {
    /// Writes to a closed pipe or socket must fail with EPIPE, not kill the process.
    static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// Blocks every signal on the calling thread, so signals meant for the process (SIGCHLD
    /// from children...) go to threads prepared for them instead of interrupting our I/O.
    static func blockSignalsOnThisThread() {
        var all = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, nil)
    }

    static func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// `name` when it contains a slash and is executable, else the first executable of that
    /// name in a directory of `PATH` (as execvp searches), else nil.
    static func findExecutable(_ name: String, path: String? = nil) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let dirs = (path ?? environment("PATH") ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false)
        for dir in dirs {
            let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Milliseconds until `deadline` for poll(): -1 for none, at least 0.
    static func pollTimeout(until deadline: ContinuousClock.Instant?) -> Int32 {
        guard let deadline else { return -1 }
        let left = ContinuousClock.now.duration(to: deadline)
        if left <= .zero { return 0 }
        let ms = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
        return Int32(clamping: ms)
    }

    enum ConnectFailure: Error { case refused, timeout, unresolvable(String), other(String), cancelled }

    /// A non-blocking TCP connection to host:port within `deadline`; tries every address.
    /// `wakeFD` readable aborts the wait (the stream was closed meanwhile).
    static func connectTCP(host: String, port: Int, deadline: ContinuousClock.Instant,
                           wakeFD: Int32) -> Result<Int32, ConnectFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            return .failure(.unresolvable(String(cString: gai_strerror(rc))))
        }
        defer { freeaddrinfo(list) }
        var lastFailure = ConnectFailure.refused
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let ai = node {
            node = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { lastFailure = .other(errorText()); continue }
            setNonBlocking(fd)
            if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return .success(fd) }
            guard errno == EINPROGRESS else {
                lastFailure = errno == ECONNREFUSED ? .refused : .other(errorText())
                close(fd)
                continue
            }
            var fds = [pollfd(fd: fd, events: Int16(POLLOUT), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            let n = system_poll(&fds, until: deadline)
            if n == 0 { close(fd); return .failure(.timeout) }
            if fds[1].revents != 0 { close(fd); return .failure(.cancelled) }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err == 0 { return .success(fd) }
            lastFailure = err == ECONNREFUSED ? .refused : .other(errorText(err))
            close(fd)
        }
        return .failure(lastFailure)
    }
}

extension Posix {
    /// Spawns `arguments` (looked up in PATH) with `redirect` mapping our descriptors onto the
    /// child's (e.g. [(devnull, 0)]); other descriptors are not inherited when close-on-exec.
    /// The child gets an empty signal mask and default handlers.
    static func spawn(_ arguments: [String], redirect: [(from: Int32, to: Int32)]) -> Result<pid_t, ConnectFailure> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (from, to) in redirect { posix_spawn_file_actions_adddup2(&actions, from, to) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, &attr, &argv, environ)
        return rc == 0 ? .success(pid) : .failure(.other("cannot run \(arguments[0]): \(errorText(rc))"))
    }

    /// The exit status of a finished child: 0-255, or 128 + signal.
    static func exitCode(_ status: Int32) -> Int32 {
        // WIFEXITED and friends are macros Swift cannot import.
        let sig = status & 0x7f
        return sig == 0 ? (status >> 8) & 0xff : 128 + sig
    }

    /// Ends a child: SIGTERM, then SIGKILL if it is still there after `grace`; reaps it.
    static func terminate(_ pid: pid_t, grace: Duration = .seconds(2)) {
        var status: Int32 = 0
        if system_waitpid(pid, &status, WNOHANG) == pid { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            let r = system_waitpid(pid, &status, WNOHANG)
            if r == pid || r < 0 { return }
            usleep(2000)
        }
        kill(pid, SIGKILL)
        _ = system_waitpid(pid, &status, 0)
    }

    /// The value of an environment variable.
    static func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}

/// A self-pipe that wakes a thread blocked in poll().
final class WakePipe: Sendable {
    let readFD: Int32
    let writeFD: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        _ = pipe(&fds)
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            Posix.setNonBlocking(fd)
        }
        readFD = fds[0]
        writeFD = fds[1]
    }

    func wake() {
        var b: UInt8 = 1
        _ = Glibc.write(writeFD, &b, 1)
    }

    func drain() {
        var buf = [UInt8](repeating: 0, count: 64)
        while Glibc.read(readFD, &buf, 64) > 0 {}
    }

    deinit {
        close(readFD)
        close(writeFD)
    }
}

extension Duration {
    /// The duration in seconds, for messages.
    package var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
