/// How NixCore reads the files that configuration refers to (nix.conf includes, `@file`
/// machine lists) without doing I/O itself: the caller supplies the reads.
///
/// Return the file's text, or `nil` when the file does not exist (Nix treats a missing file
/// differently from an unreadable one). Throw for any other failure.
public typealias FileReader = (_ path: String) throws -> String?

/// Lexical path functions, as Nix's `canonPath`/`dirOf`/`absPath` (no symlinks: pure).
enum ConfigPath {
    /// Removes `.`, `..` and repeated slashes of an absolute path. Nil for a relative path.
    static func canonical(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return nil }
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The directory part, as Nix's `dirOf`: `"."` when there is no slash.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `path` made absolute against `base`, then canonical; nil if the result is not absolute.
    static func absolute(_ path: String, relativeTo base: String) -> String? {
        canonical(path.hasPrefix("/") ? path : base + "/" + path)
    }
}
