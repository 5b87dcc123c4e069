import NixCore

/// Materialises a NAR event stream (from `NARReader`) at `destination`, as Nix's
/// `restorePath`. It builds the tree under a hidden temporary name beside the destination
/// and renames it into place only in `finish()`; on failure, `abort()` or deinit the
/// temporary tree is deleted, so an interrupted restore leaves nothing at `destination`.
/// Entry names are checked again here (no `/`, `.`, `..`, NUL, empty) whatever produced the
/// events, so nothing is written outside the destination.
public final class NARRestorer {
    public let destination: String
    private let finalPath: [UInt8]
    private let temporaryPath: [UInt8]
    /// Open directories, innermost last.
    private var directories: [[UInt8]] = []
    /// Where the next node goes (nil when none is expected).
    private var nextPath: [UInt8]?
    private var file: (fd: Int32, path: [UInt8])?
    private var started = false
    private var done = false

    /// Prepares a restore; `destination` must not exist yet.
    public init(destination: String) throws {
        var dest = Array(destination.utf8)
        while dest.count > 1 && dest.last == 0x2f { dest.removeLast() }
        guard let base = dest.split(separator: 0x2f).last else {
            throw LocalFileError("restoring to", path: destination, reason: "not a file name")
        }
        if LocalFileSystem.exists(dest) {
            throw LocalFileError("restoring to", path: destination, reason: "path already exists")
        }
        let parent = dest.count - base.count
        let suffix = Array(".tmp-\(String(UInt64.random(in: .min ... .max), radix: 16))".utf8)
        self.destination = destination
        self.finalPath = dest
        self.temporaryPath = Array(dest[..<parent]) + [0x2e] + Array(base) + suffix
        self.nextPath = temporaryPath
    }

    deinit { if !done { abort() } }

    /// Applies one event.
    public func handle(_ event: NAREvent) throws {
        switch event {
        case let .regularFile(executable, _):
            let path = try takeNextPath("a regular file")
            file = (try LocalFileSystem.createFile(path, executable: executable), path)
        case let .contents(chunk):
            guard let file else { throw unexpected("file contents") }
            try LocalFileSystem.writeAll(file.fd, chunk, path: file.path)
        case .endFile:
            guard let f = file else { throw unexpected("end of file") }
            file = nil
            try LocalFileSystem.close(f.fd, path: f.path)
        case let .symlink(target):
            if NARFormat.targetProblem(target) != nil {
                throw LocalFileError("restoring", path: destination, reason: "invalid symlink target")
            }
            try LocalFileSystem.makeSymlink(target: target, at: takeNextPath("a symlink"))
        case .directory:
            let path = try takeNextPath("a directory")
            try LocalFileSystem.makeDirectory(path)
            directories.append(path)
        case let .entry(name):
            guard let dir = directories.last, nextPath == nil, file == nil else { throw unexpected("a directory entry") }
            if NARFormat.nameProblem(name) != nil {
                throw LocalFileError("restoring", path: destination,
                                     reason: "refusing unsafe entry name '\(LocalFileSystem.display(name))'")
            }
            nextPath = dir + [0x2f] + name
        case .endDirectory:
            guard nextPath == nil, directories.popLast() != nil else { throw unexpected("end of directory") }
        }
    }

    /// Moves the complete tree to `destination`. (`rename` would replace a file or empty
    /// directory created there since `init` checked; Swift's Glibc lacks `renameat2`.)
    public func finish() throws {
        guard started, nextPath == nil, file == nil, directories.isEmpty, !done else {
            throw unexpected("end of NAR")
        }
        try LocalFileSystem.rename(temporaryPath, to: finalPath)
        done = true
    }

    /// Deletes whatever was written so far.
    public func abort() {
        if let file { _ = try? LocalFileSystem.close(file.fd, path: file.path) }
        file = nil
        LocalFileSystem.removeTree(temporaryPath)
        done = true
    }

    /// Restores a NAR held in memory (or any chunk sequence) to `destination`.
    public static func restore<C: ContiguousBytes>(nar: C, to destination: String) throws {
        let restorer = try NARRestorer(destination: destination)
        do {
            var reader = NARReader()
            let used = try reader.feed(nar) { try restorer.handle($0) }
            try reader.finish()
            let total = nar.withUnsafeBytes { $0.count }
            if used < total { throw NARError(offset: reader.bytesConsumed, .trailingBytes(count: total - used)) }
            try restorer.finish()
        } catch {
            restorer.abort()
            throw error
        }
    }

    private func takeNextPath(_ what: String) throws -> [UInt8] {
        guard let path = nextPath, file == nil else { throw unexpected(what) }
        nextPath = nil
        started = true
        return path
    }

    private func unexpected(_ what: String) -> LocalFileError {
        LocalFileError("restoring", path: destination, reason: "\(what) is not expected here")
    }
}
