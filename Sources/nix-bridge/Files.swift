import Glibc
import NixTransport

/// The CLI's own file access: bounded reads and atomic replacement.
enum Files {
    /// Reads a whole file of at most `limit` bytes.
    static func read(_ path: String, limit: Int) throws(CLIError) -> String {
        String(decoding: try readBytes(path, limit: limit), as: UTF8.self)
    }

    /// A `.drv` file of the local store, for `Targets` (bounded: Nix's own derivations stay
    /// far below 64 MiB).
    static func readDerivation(_ path: String) throws -> [UInt8] {
        try readBytes(path, limit: 64 << 20)
    }

    /// The bytes of a whole file of at most `limit` bytes.
    static func readBytes(_ path: String, limit: Int) throws(CLIError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .file(path: path, operation: "open", reason: errnoText()) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        var out = [UInt8]()
        while true {
            let r = buf.withUnsafeMutableBytes { system_read(fd, $0.baseAddress!, $0.count) }
            guard r >= 0 else { throw .file(path: path, operation: "read", reason: errnoText()) }
            if r == 0 { break }
            out += buf[..<r]
            guard out.count <= limit else { throw .tooLarge(path: path, limit: limit) }
        }
        return out
    }

    /// Replaces `path` with `text` atomically: a temporary file in the same directory with
    /// the old file's mode, flushed, then renamed over it. Readers see the old or the new
    /// file, never a half-written one; on failure the old file is untouched.
    static func replace(_ path: String, with text: String) throws(CLIError) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw .file(path: path, operation: "stat", reason: errnoText()) }
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let tmp = dir + "." + base + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .file(path: tmp, operation: "create", reason: errnoText()) }
        let bytes = Array(text.utf8)
        var off = 0, ok = true
        while off < bytes.count {
            let r = bytes.withUnsafeBytes { system_write(fd, $0.baseAddress! + off, $0.count - off) }
            guard r > 0 else { ok = false; break }
            off += r
        }
        if ok { ok = fchmod(fd, st.st_mode & 0o7777) == 0 && fsync(fd) == 0 }
        let reason = ok ? "" : errnoText()
        close(fd)
        guard ok else {
            unlink(tmp)
            throw .file(path: tmp, operation: "write", reason: reason)
        }
        guard rename(tmp, path) == 0 else {
            let e = CLIError.file(path: path, operation: "replace", reason: errnoText())
            unlink(tmp)
            throw e
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
