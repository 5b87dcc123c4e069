import NixCore
import Synchronization

/// One build slot on a machine, held as a lock on `DIR/ESCAPED-URI-N` until released (or
/// until the slot is deallocated, or the process exits). While held, every scheduler sharing
/// the state directory, in this or another process, counts it in the machine's load.
public final class Slot: Sendable {
    public let machine: Machine
    /// The slot number, 0 ..< maxJobs.
    public let number: Int
    /// The lock file.
    public let lockPath: String
    private let fd: Mutex<Int32?>

    init(machine: Machine, number: Int, lockPath: String, fd: Int32) {
        self.machine = machine
        self.number = number
        self.lockPath = lockPath
        self.fd = Mutex(fd)
    }

    /// Frees the slot for other builds; calling it again does nothing.
    public func release() {
        fd.withLock { fd in
            if let f = fd { LockFiles.close(f) }
            fd = nil
        }
    }

    /// True until `release`.
    public var isHeld: Bool { fd.withLock { $0 != nil } }

    deinit { release() }
}
