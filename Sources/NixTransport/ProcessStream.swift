import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A local process (e.g. `nix-daemon --stdio --store local?root=DIR`) as a `ByteStream`:
/// its stdin and stdout are the stream, stderr is captured (last 64 KiB).
///
/// `close()` ends the child (SIGTERM to its PID, never to anything else) and reaps it.
/// Writing to a process that exited fails with `TransportError.peerClosed`: SIGPIPE is
/// ignored process-wide once the first ProcessStream starts.
public final class ProcessStream: ByteStream {
    public let arguments: [String]
    public let pid: pid_t
    let io: FileDescriptorStream
    private let state = Mutex(ChildState())

    private struct ChildState {
        var stderr: [UInt8] = []
        var stderrEnded = false
        var exited = false
        var status: Int32?
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Held from making a child's pipes to spawning it. Until fcntl() the pipes are
    /// inheritable: a child spawned by another thread meanwhile would keep them open after
    /// this child exits, so a read of its stdout would never see EOF and close() would wait
    /// for it forever (`nix-bridge build` hung so). Glibc does not export pipe2 to Swift.
    private static let spawning = Mutex(())

    /// Starts `arguments[0]` (an absolute path, or a name looked up in PATH) with `environment`
    /// added to ours.
    public init(_ arguments: [String], environment: [String: String] = [:]) throws(TransportError) {
        _ = Posix.ignoreSIGPIPE
        self.arguments = arguments
        let (pid, stdinW, stdoutR, stderrR) = try Self.spawning.withLock { _ throws(TransportError) in
            try Self.spawn(arguments, environment: environment)
        }
        self.pid = pid
        io = FileDescriptorStream(readFD: stdoutR, writeFD: stdinW, peer: "process \(pid) (\(arguments[0]))")
        startStderrReader(stderrR)
        startReaper()
    }

    /// Spawns the child; returns its PID and our ends of its stdin, stdout and stderr.
    private static func spawn(_ arguments: [String], environment: [String: String]) throws(TransportError)
        -> (pid_t, Int32, Int32, Int32) {
        let command = arguments.joined(separator: " ")
        var stdin: [Int32] = [-1, -1], stdout: [Int32] = [-1, -1], stderr: [Int32] = [-1, -1]
        guard pipe(&stdin) == 0, pipe(&stdout) == 0, pipe(&stderr) == 0 else {
            let message = Posix.errorText()
            for fd in stdin + stdout + stderr where fd >= 0 { Glibc.close(fd) }
            throw .spawnFailed(command: command, message: message)
        }
        // All six close-on-exec, so a process spawned concurrently elsewhere cannot inherit
        // them; dup2 onto 0, 1 and 2 in the child clears the flag on those copies.
        for fd in stdin + stdout + stderr { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdout[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderr[1], 2)
        // Dispatch threads block signals; the child must not inherit that mask.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var env = ProcessInfo_environment()
        for (k, v) in environment { env[k] = v }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, &attr, &argv, &envp)
        for fd in [stdin[0], stdout[1], stderr[1]] { Glibc.close(fd) }
        guard rc == 0 else {
            for fd in [stdin[1], stdout[0], stderr[0]] { Glibc.close(fd) }
            throw .spawnFailed(command: command, message: Posix.errorText(rc))
        }
        return (pid, stdin[1], stdout[0], stderr[0])
    }

    private func startStderrReader(_ fd: Int32) {
        DispatchQueue(label: "stderr \(pid)").async { [self] in
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { system_read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                state.withLock { s in
                    s.stderr += buf[..<n]
                    if s.stderr.count > 65536 { s.stderr.removeFirst(s.stderr.count - 65536) }
                }
            }
            Glibc.close(fd)
            state.withLock { $0.stderrEnded = true }
        }
    }

    /// Waits for the child without reaping it (so its PID cannot be reused while we might
    /// still signal it), then reaps it under the lock.
    private func startReaper() {
        DispatchQueue(label: "reap \(pid)").async { [self] in
            var info = siginfo_t()
            _ = system_waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT)
            let waiters = state.withLock { s in
                var status: Int32 = 0
                _ = waitpid(pid, &status, 0)
                s.exited = true
                s.status = status
                defer { s.exitWaiters = [] }
                return s.exitWaiters
            }
            waiters.forEach { $0.resume() }
        }
    }

    public func read(maxLength: Int) async throws -> [UInt8] { try await io.read(maxLength: maxLength) }
    public func write(_ bytes: [UInt8]) async throws { try await io.write(bytes) }

    /// Closes the child's stdin.
    public func closeWrite() async {
        await io.closeWrite(shutdownOnly: false)
    }

    /// Ends the child (SIGTERM if still running, its stdin closed; SIGKILL if it is still
    /// there after `killGrace`), reaps it and closes the pipes.
    public func close() async {
        let backstop = Task { [self] in
            try await Task.sleep(for: Self.killGrace)
            state.withLock { s in if !s.exited { kill(pid, SIGKILL) } }
        }
        defer { backstop.cancel() }
        await io.close { [self] in
            state.withLock { s in if !s.exited { kill(pid, SIGTERM) } }
        }
        await waitExited()
    }

    /// How long `close()` lets a child end by itself before it kills it.
    static let killGrace: Duration = .seconds(5)

    /// Closes stdin and waits for the child to exit by itself; returns its wait status
    /// decoded: exit code, or 128 + signal number.
    public func waitForExit() async -> Int32 {
        await closeWrite()
        await waitExited()
        await close()
        return exitCode ?? -1
    }

    private func waitExited() async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s in
                if s.exited { return true }
                s.exitWaiters.append(cont)
                return false
            }
            if done { cont.resume() }
        }
    }

    /// Exit code (or 128 + signal) once the child ended.
    public var exitCode: Int32? {
        state.withLock { s in
            guard let st = s.status else { return nil }
            let sig = st & 0x7f
            return sig == 0 ? (st >> 8) & 0xff : 128 + sig
        }
    }

    /// The child's stderr so far (the last 64 KiB).
    public var stderrText: String { state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

    /// The child's stderr once it has been read to its end, for a child that has exited: its
    /// last words can still be in the pipe when the exit is seen. Waits at most `limit`, as a
    /// process the child left behind (ssh's ControlPersist master) may hold the pipe open.
    public func finalStderrText(waitingAtMost limit: Duration = .seconds(1)) async -> String {
        let deadline = ContinuousClock.now + limit
        while !state.withLock({ $0.stderrEnded }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return stderrText
    }
}

/// The environment without Foundation (NixTransport's POSIX files avoid it).
func ProcessInfo_environment() -> [String: String] {
    var env: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let s = String(cString: entry)
        if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        p += 1
    }
    return env
}
