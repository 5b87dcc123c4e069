import Foundation
import Glibc
import NixTransport

/// Failures of the slot lock files.
public struct LockFileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var reason: String

    public var description: String { "\(operation) '\(path)': \(reason)" }
}

/// The lock files of Nix's `current-load` directory: `flock` locks (per open file, so two
/// opens in one process exclude each other just as two processes do), opened close-on-exec
/// so that ssh and other children never inherit a slot.
enum LockFiles {
    /// Nix's `escapeUri`: a store URI as a file name (`/` becomes `_`).
    static func escapeUri(_ uri: String) -> String {
        String(uri.map { $0 == "/" ? "_" : $0 })
    }

    /// `DIR/ESCAPED-URI-SLOT`, as build-remote's `openSlotLock` names it.
    static func slotPath(directory: String, storeUri: String, slot: Int) -> String {
        "\(directory)/\(escapeUri(storeUri))-\(slot)"
    }

    /// Creates the directory and its parents (Nix ignores errors here; opening the lock
    /// file then reports them).
    static func makeDirectory(_ path: String) {
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Nix's `openLockFile(path, create: true)`.
    static func open(_ path: String) throws(LockFileError) -> Int32 {
        let fd = Glibc.open(path, O_CLOEXEC | O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else { throw LockFileError(operation: "opening lock file", path: path, reason: errnoText()) }
        return fd
    }

    /// A non-blocking exclusive lock: true when taken, false when another open file holds it.
    static func tryLock(_ fd: Int32, path: String) throws(LockFileError) -> Bool {
        guard system_flock(fd, LOCK_EX | LOCK_NB) != 0 else { return true }
        if errno == EWOULDBLOCK { return false }
        throw LockFileError(operation: "acquiring lock", path: path, reason: errnoText())
    }

    /// A blocking exclusive lock, for locks others hold only for moments (the main lock).
    static func lock(_ fd: Int32, path: String) throws(LockFileError) {
        if system_flock(fd, LOCK_EX) != 0 {
            throw LockFileError(operation: "acquiring lock", path: path, reason: errnoText())
        }
    }

    /// Marks a slot as taken now (Nix touches it with `futimens` so its age shows).
    static func touch(_ fd: Int32) { _ = futimens(fd, nil) }

    /// Closing the last descriptor of the open file releases its lock.
    static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
