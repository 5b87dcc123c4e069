#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The system calls of Bridge that a signal can interrupt, each retried on EINTR here and
// nowhere else (as swift-system's Internals/Syscalls.swift does).

/// Calls `call` again for as long as it fails with EINTR.
@inline(__always)
func retryingOnInterrupt<T: FixedWidthInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result != -1 || errno != EINTR { return result }
    }
}

func system_flock(_ fd: Int32, _ operation: Int32) -> Int32 {
    retryingOnInterrupt { flock(fd, operation) }
}
