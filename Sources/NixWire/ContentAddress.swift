import NixCore

/// How a content-addressed path was hashed, and the hash: `text:sha256:…`, `fixed:sha1:…`,
/// `fixed:r:sha256:…` on the wire (Nix's `renderContentAddress`).
public struct ContentAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Method: String, Sendable, Hashable {
        /// `builtins.toFile` / text files (`text:`).
        case text
        /// Flat file hash (`fixed:`).
        case flat
        /// Hash of the NAR serialisation (`fixed:r:`).
        case nar
        /// Git tree hash (`fixed:git:`).
        case git
    }

    public var method: Method
    public var hash: Hash

    public init(method: Method, hash: Hash) {
        self.method = method
        self.hash = hash
    }

    /// The wire and narinfo form.
    public var description: String {
        let h = hash.string(.nix32)
        switch method {
        case .text: return "text:" + h
        case .flat: return "fixed:" + h
        case .nar: return "fixed:r:" + h
        case .git: return "fixed:git:" + h
        }
    }

    /// Parses the rendered form.
    public init(parsing s: String) throws(WireError) {
        var method: Method
        var rest: Substring
        if s.hasPrefix("text:") {
            method = .text
            rest = s.dropFirst(5)
        } else if s.hasPrefix("fixed:") {
            rest = s.dropFirst(6)
            method = .flat
            if rest.hasPrefix("r:") {
                method = .nar
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix("git:") {
                method = .git
                rest = rest.dropFirst(4)
            }
        } else {
            throw .badValue(reading: "content address", detail: "'\(s)' does not start with 'text:' or 'fixed:'")
        }
        guard rest.contains(":") else {
            throw .badValue(reading: "content address", detail: "'\(s)' lacks a hash algorithm")
        }
        do {
            self.init(method: method, hash: try Hash(parsing: rest))
        } catch {
            throw .badValue(reading: "content address", detail: error.description)
        }
        if method == .text && hash.algorithm != .sha256 {
            throw .badValue(reading: "content address", detail: "text hashing must use sha256 in '\(s)'")
        }
    }

    /// Reads an optional content address (empty string = none).
    static func readOptional(from r: inout WireReader) throws(WireError) -> ContentAddress? {
        let s = try r.readString("content address")
        return s.isEmpty ? nil : try ContentAddress(parsing: s)
    }

    static func read(from r: inout WireReader) throws(WireError) -> ContentAddress {
        try ContentAddress(parsing: try r.readString("content address"))
    }
}
