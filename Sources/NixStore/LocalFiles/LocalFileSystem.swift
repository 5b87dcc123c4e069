import Glibc
import NixTransport

/// A failed file-system operation, worded like Nix's `SysError` ("creating file '...': ...").
public struct LocalFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    /// The `errno` value, or 0 when the failure is not a system call's.
    public var errno: Int32
    /// Extra explanation when `errno` is 0.
    public var reason: String

    public init(_ operation: String, path: String, errno: Int32 = 0, reason: String = "") {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.reason = reason
    }

    public var description: String {
        let why = errno != 0 ? String(cString: strerror(errno)) : reason
        return "\(operation) '\(path)': \(why)"
    }
}

/// The system calls of the local file tree code, on raw byte paths (Linux file names need not
/// be UTF-8). Everything else in LocalFiles goes through here.
enum LocalFileSystem {
    enum Kind { case regular, directory, symlink, other }

    struct Status {
        var kind: Kind
        var size: UInt64
        /// Owner-executable, the bit Nix looks at.
        var executable: Bool
    }

    static func display(_ path: [UInt8]) -> String { String(decoding: path, as: UTF8.self) }

    static func withCPath<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        try (path + [0]).withUnsafeBufferPointer { buf in
            try buf.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }

    private static func failure(_ op: String, _ path: [UInt8]) -> LocalFileError {
        LocalFileError(op, path: display(path), errno: Glibc.errno)
    }

    private static func status(of st: stat) -> Status {
        let kind: Kind
        switch st.st_mode & 0o170000 {
        case 0o100000: kind = .regular
        case 0o040000: kind = .directory
        case 0o120000: kind = .symlink
        default: kind = .other
        }
        return Status(kind: kind, size: UInt64(st.st_size), executable: st.st_mode & 0o100 != 0)
    }

    static func lstatus(_ path: [UInt8]) throws(LocalFileError) -> Status {
        var st = stat()
        let rc = withCPath(path) { lstat($0, &st) }
        if rc != 0 { throw failure("getting status of", path) }
        return status(of: st)
    }

    static func fstatus(_ fd: Int32, path: [UInt8]) throws(LocalFileError) -> Status {
        var st = stat()
        if fstat(fd, &st) != 0 { throw failure("getting status of", path) }
        return status(of: st)
    }

    /// Entry names of a directory, without `.` and `..`, unsorted.
    static func listDirectory(_ path: [UInt8]) throws(LocalFileError) -> [[UInt8]] {
        guard let dir = withCPath(path, { opendir($0) }) else { throw failure("opening directory", path) }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while true {
            Glibc.errno = 0
            guard let ent = readdir(dir) else {
                if Glibc.errno != 0 { throw failure("reading directory", path) }
                return names
            }
            let name = withUnsafePointer(to: &ent.pointee.d_name) {
                $0.withMemoryRebound(to: UInt8.self, capacity: 256) { p in
                    Array(UnsafeBufferPointer(start: p, count: strlen(UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))))
                }
            }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            names.append(name)
        }
    }

    static func readLink(_ path: [UInt8]) throws(LocalFileError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 4097)
        let n = withCPath(path) { p in
            buf.withUnsafeMutableBufferPointer { readlink(p, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count) }
        }
        if n < 0 { throw failure("reading symbolic link", path) }
        if n == buf.count { throw LocalFileError("reading symbolic link", path: display(path), reason: "target too long") }
        return Array(buf[..<n])
    }

    static func openForReading(_ path: [UInt8]) throws(LocalFileError) -> Int32 {
        let fd = withCPath(path) { open($0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
        if fd < 0 { throw failure("opening file", path) }
        return fd
    }

    /// Reads up to `buffer.count` bytes; 0 at end of file.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, path: [UInt8]) throws(LocalFileError) -> Int {
        let n = system_read(fd, buffer.baseAddress, buffer.count)
        if n < 0 { throw failure("reading file", path) }
        return n
    }

    static func close(_ fd: Int32, path: [UInt8]) throws(LocalFileError) {
        if Glibc.close(fd) != 0 { throw failure("closing file", path) }
    }

    /// Creates a new file (never reusing one), mode 0666 minus umask, plus x bits if asked,
    /// as Nix's `RestoreSink` does.
    static func createFile(_ path: [UInt8], executable: Bool) throws(LocalFileError) -> Int32 {
        let fd = withCPath(path) { open($0, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o666) }
        if fd < 0 { throw failure("creating file", path) }
        if executable {
            var st = stat()
            if fstat(fd, &st) != 0 || fchmod(fd, st.st_mode | 0o111) != 0 {
                let e = failure("making executable", path)
                _ = Glibc.close(fd)
                throw e
            }
        }
        return fd
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: [UInt8]) throws(LocalFileError) {
        var done = 0
        while done < bytes.count {
            let n = system_write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 { throw failure("writing to file", path) }
            done += n
        }
    }

    static func makeDirectory(_ path: [UInt8]) throws(LocalFileError) {
        if withCPath(path, { mkdir($0, 0o777) }) != 0 { throw failure("creating directory", path) }
    }

    static func makeSymlink(target: [UInt8], at path: [UInt8]) throws(LocalFileError) {
        let rc = withCPath(target) { t in withCPath(path) { symlink(t, $0) } }
        if rc != 0 { throw failure("creating symlink", path) }
    }

    static func exists(_ path: [UInt8]) -> Bool {
        var st = stat()
        return withCPath(path) { lstat($0, &st) } == 0
    }

    static func rename(_ from: [UInt8], to: [UInt8]) throws(LocalFileError) {
        let rc = withCPath(from) { f in withCPath(to) { Glibc.rename(f, $0) } }
        if rc != 0 { throw failure("renaming to", to) }
    }

    /// Deletes a file, symlink or directory tree; a missing path is not an error.
    static func removeTree(_ path: [UInt8]) {
        guard let st = try? lstatus(path) else { return }
        if st.kind == .directory {
            // Make it writable first so entries of a read-only directory can go.
            _ = withCPath(path) { chmod($0, 0o700) }
            for name in (try? listDirectory(path)) ?? [] { removeTree(path + [0x2f] + name) }
            _ = withCPath(path) { rmdir($0) }
        } else {
            _ = withCPath(path) { unlink($0) }
        }
    }
}
