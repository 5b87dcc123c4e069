import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A long-running child started with posix_spawn and ended by PID.
///
/// Not Foundation's `Process`: daemons such as sshd close every inherited descriptor at
/// start-up, which Foundation on Linux takes for the child's exit; its monitor thread then
/// blocks in waitpid() on the daemon and no later `Process` ever completes.
public final class SpawnedProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var reaped = false

    /// Starts `arguments[0]` (absolute path) with stdin, stdout and stderr on /dev/null, or
    /// stdout and stderr appended to `logFile`.
    public init(_ arguments: [String], logFile: String? = nil, environment: [String: String]? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let out = logFile ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let env = (environment.map { ProcessInfo.processInfo.environment.merging($0) { $1 } } ?? ProcessInfo.processInfo.environment)
            .map { "\($0.key)=\($0.value)" }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // Dispatch worker threads block signals and a spawned child inherits that mask:
        // without a reset, the child would ignore our SIGTERM.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigfillset(&defaults)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, &attr, &argv, &envp)
        guard rc == 0 else { throw Fleet.FleetError(message: "cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// How the child ended.
    public enum Ending: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)

        init(waitStatus status: Int32) {
            self = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        }
    }

    private var ending: Ending?

    public var isRunning: Bool {
        lock.withLock {
            if reaped { return false }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                reaped = true
                ending = Ending(waitStatus: status)
            }
            return !reaped
        }
    }

    /// Waits up to `timeout` seconds for the child to end on its own: how it ended, or nil
    /// if it still runs.
    public func waitForExit(timeout: Double) -> Ending? {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() >= deadline { return nil }
            usleep(10_000)
        }
        return lock.withLock { ending }
    }

    /// Sends `signal` and waits for the child to end; after `grace` seconds it is killed.
    /// (A nix-daemon blocked in accept() may never act on SIGTERM: its signal thread only
    /// sets a flag. A test must not hang on that.)
    public func stop(signal: Int32 = SIGTERM, grace: Double = 5) {
        lock.withLock {
            guard !reaped else { return }
            kill(pid, signal)
            var status: Int32 = 0
            let deadline = Date().addingTimeInterval(grace)
            while waitpid(pid, &status, WNOHANG) == 0 {
                if Date() >= deadline {
                    kill(pid, SIGKILL)
                    _ = waitpid(pid, &status, 0)
                    break
                }
                usleep(10_000)
            }
            reaped = true
        }
    }

    deinit { stop() }
}
