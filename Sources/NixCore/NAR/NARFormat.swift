/// Constants and rules of the Nix ARchive format shared by `NARWriter` and `NARReader`.
///
/// A NAR is a sequence of strings, each an 8-byte little-endian length followed by the bytes
/// and zero padding up to a multiple of 8. The bounds follow upstream Nix's `parseDump`.
public enum NARFormat {
    /// The first string of every NAR.
    public static let magic = "nix-archive-1"
    /// Deepest node nesting accepted (the root is at depth 0), as Nix's `narMaxDepth`.
    public static let maxDepth = 64
    /// Longest tag (`(`, `type`, `contents`...) read before giving up.
    public static let maxTagLength = 32
    /// Longest entry name (Nix's `narMaxName`).
    public static let maxNameLength = 255
    /// Longest symlink target (Nix's `narMaxTarget`).
    public static let maxTargetLength = 4095

    /// Zero bytes needed after `length` bytes to reach a multiple of 8.
    @inlinable
    public static func padding(_ length: UInt64) -> Int { Int((8 - length % 8) % 8) }

    /// Why `name` cannot be a directory entry name, or nil when it can: Nix refuses empty
    /// names, `.`, `..`, and names containing `/` or NUL.
    public static func nameProblem(_ name: [UInt8]) -> String? {
        if name.isEmpty || name == [0x2e] || name == [0x2e, 0x2e]
            || name.contains(0x2f) || name.contains(0) {
            return "NAR contains invalid file name '\(printable(name))'"
        }
        if name.count > maxNameLength {
            return "file name '\(printable(name.prefix(64)))...' is longer than \(maxNameLength) bytes"
        }
        return nil
    }

    /// Why `target` cannot be a symlink target, or nil when it can.
    public static func targetProblem(_ target: [UInt8]) -> String? {
        if target.isEmpty || target.contains(0) { return "NAR contains invalid symlink target" }
        if target.count > maxTargetLength { return "symlink target is longer than \(maxTargetLength) bytes" }
        return nil
    }

    /// Byte-wise order, which is how Nix sorts entries (`std::string` comparison); Swift's
    /// `String <` compares Unicode scalars after normalisation and can differ.
    @inlinable
    public static func precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.lexicographicallyPrecedes(b)
    }

    /// Bytes as text for messages (invalid UTF-8 shown with replacement characters, NUL as \0).
    static func printable<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: bytes, as: UTF8.self).replacingNUL()
    }
}

extension String {
    fileprivate func replacingNUL() -> String {
        guard utf8.contains(0) else { return self }
        return String(unicodeScalars.map { $0 == "\0" ? "\\0" : String($0) }.joined())
    }
}

/// One step of a NAR, as `NARReader` reports it and `NARWriter` accepts it.
///
/// A regular file is `regularFile`, any number of `contents`, then `endFile`; a symlink is one
/// `symlink`; a directory is `directory`, then for each entry (sorted) `entry` followed by the
/// entry's node, then `endDirectory`.
public enum NAREvent {
    case regularFile(executable: Bool, size: UInt64)
    /// A piece of the current file's contents; only valid during the callback.
    case contents(UnsafeRawBufferPointer)
    case endFile
    case symlink(target: [UInt8])
    case directory
    /// The name of the next node in the current directory.
    case entry(name: [UInt8])
    case endDirectory
}
