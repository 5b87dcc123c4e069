import Glibc

/// Reading and writing key files the way `nix-store --generate-binary-cache-key` does:
/// `name:base64` with no trailing newline; the public file with the default mode
/// (0666 less the umask), the secret one readable by its owner only.
public enum KeyFiles {
    /// Largest key file read (keys are under 100 bytes).
    static let maxSize = 4096

    public static func readSecretKey(_ path: String) throws(KeyError) -> SecretKey {
        try SecretKey(parsing: try read(path, kind: .secret), source: path)
    }

    public static func readPublicKey(_ path: String) throws(KeyError) -> PublicKey {
        try PublicKey(parsing: try read(path, kind: .public), source: path)
    }

    /// Writes a new key pair. Existing files are replaced, as Nix does; the secret file is
    /// written to a fresh 0600 temporary file and renamed into place, so it is never
    /// readable by others, even for a moment or when an older file had a looser mode.
    public static func write(_ key: SecretKey, secretFile: String, publicFile: String) throws(KeyError) {
        try writeFile(publicFile, key.publicKey.description, mode: 0o666, kind: .public)
        try writeFile(secretFile, key.fileContents, mode: 0o600, kind: .secret)
    }

    private static func read(_ path: String, kind: KeyError.Kind) throws(KeyError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KeyError(kind: kind, source: path, reason: .io(errnoText())) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: maxSize + 1)
        var n = 0
        while n < buf.count {
            let r = buf.withUnsafeMutableBytes { system_read(fd, $0.baseAddress! + n, $0.count - n) }
            guard r >= 0 else { throw KeyError(kind: kind, source: path, reason: .io(errnoText())) }
            if r == 0 { break }
            n += r
        }
        guard n <= maxSize else { throw KeyError(kind: kind, source: path, reason: .tooLong(n)) }
        return String(decoding: buf[..<n], as: UTF8.self)
    }

    private static func writeFile(_ path: String, _ text: String, mode: mode_t, kind: KeyError.Kind) throws(KeyError) {
        let fail = { (what: String) in KeyError(kind: kind, source: path, reason: .io(what + ": " + errnoText())) }
        if kind == .public {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
            guard fd >= 0 else { throw fail("open") }
            defer { close(fd) }
            guard writeAll(fd, text) else { throw fail("write") }
            return
        }
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw fail("open") }
        guard fchmod(fd, mode) == 0, writeAll(fd, text), fsync(fd) == 0 else {
            let e = fail("write")
            close(fd)
            unlink(tmp)
            throw e
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = fail("rename")
            unlink(tmp)
            throw e
        }
    }

    private static func writeAll(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let r = bytes.withUnsafeBytes { system_write(fd, $0.baseAddress! + off, $0.count - off) }
            guard r > 0 else { return false }
            off += r
        }
        return true
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
