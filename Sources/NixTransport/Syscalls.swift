#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The system calls of NixTransport that a signal can interrupt, each retried on EINTR here and
// nowhere else (as swift-system's Internals/Syscalls.swift does).

/// Calls `call` again for as long as it fails with EINTR.
@inlinable
package func retryingOnInterrupt<T: FixedWidthInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result != -1 || errno != EINTR { return result }
    }
}

package func system_read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    retryingOnInterrupt { read(fd, buffer, count) }
}

package func system_write(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    retryingOnInterrupt { write(fd, buffer, count) }
}

/// poll(2) until `deadline` (none: no limit), the timeout recomputed after an interruption.
func system_poll(_ fds: inout [pollfd], until deadline: ContinuousClock.Instant?) -> Int32 {
    retryingOnInterrupt { poll(&fds, nfds_t(fds.count), Posix.pollTimeout(until: deadline)) }
}

func system_waitid(_ idType: idtype_t, _ id: id_t, _ info: inout siginfo_t, _ options: Int32) -> Int32 {
    retryingOnInterrupt { waitid(idType, id, &info, options) }
}

package func system_flock(_ fd: Int32, _ operation: Int32) -> Int32 {
    retryingOnInterrupt { flock(fd, operation) }
}

func system_waitpid(_ pid: pid_t, _ status: inout Int32, _ options: Int32) -> pid_t {
    retryingOnInterrupt { waitpid(pid, &status, options) }
}

/// Ends the process by signal `number`'s default action, at once (a second interrupt): the
/// default disposition back, the signal unblocked on this thread (Dispatch workers block
/// signals), raised; should it not end the process, `_exit(128 + number)`.
package func system_dieBy(_ number: Int32) -> Never {
    _ = signal(number, SIG_DFL)
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, number)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    raise(number)
    _exit(128 + number)
}

/// Turns off signal `number`'s default action (a Dispatch signal source reports it instead).
package func system_ignore(_ number: Int32) {
    _ = signal(number, SIG_IGN)
}

/// glibc's mallopt(3), looked up at run time (<malloc.h> is not in Swift's Glibc module, and
/// other C libraries have none). True when the option was taken.
package func system_mallopt(_ option: Int32, _ value: Int32) -> Bool {
    guard let symbol = dlsym(nil, "mallopt") else { return false }
    typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
    return unsafeBitCast(symbol, to: MallOpt.self)(option, value) == 1
}
