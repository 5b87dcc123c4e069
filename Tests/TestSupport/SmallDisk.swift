import Foundation
import PeerFixtures
#if canImport(Glibc)
import Glibc
#endif

/// A tmpfs of a few bytes mounted on a directory of its own (the tests run as root): a disk
/// that fills up without touching a real one. `unmount()`, also on deinit, removes it.
public final class SmallDisk: @unchecked Sendable {
    public let directory: URL
    private let lock = NSLock()
    private var mounted = true

    /// Mounts a tmpfs of `bytes` on `directory` (made if missing; it should be empty), else
    /// on a new directory.
    public init(bytes: Int, on directory: URL? = nil, label: String = "nb-small-disk") throws {
        let dir = try directory ?? PeerFixtures.temporaryDirectory(label)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try PeerFixtures.run(["mount", "-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", dir.path])
        self.directory = dir
    }

    /// Fills the free space with the file `name` (written until ENOSPC).
    public func fill(name: String = "filler") throws {
        _ = try PeerFixtures.run(["dd", "if=/dev/zero", "of=\(directory.path)/\(name)", "bs=4096"], check: false)
    }

    /// Bytes still free.
    public var available: UInt64 {
        var s = statvfs()
        guard statvfs(directory.path, &s) == 0 else { return 0 }
        return UInt64(s.f_bavail) * UInt64(s.f_frsize)
    }

    /// Unmounts it (lazily if a process still holds a file there), leaving the directory.
    public func unmount() {
        let was = lock.withLock { defer { mounted = false }; return mounted }
        guard was else { return }
        if (try? PeerFixtures.run(["umount", directory.path], check: false))?.status != 0 {
            _ = try? PeerFixtures.run(["umount", "-l", directory.path], check: false)
        }
    }

    deinit { unmount() }
}
