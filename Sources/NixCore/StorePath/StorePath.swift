/// A store path's base name, `<hash part>-<name>`, independent of the store directory
/// (as Nix's `StorePath`). `StoreDirectory` turns it into and out of a full path.
public struct StorePath: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Length of the nix32 hash part (20 bytes).
    public static let hashPartLength = 32
    /// Longest name Nix accepts.
    public static let maxNameLength = 211

    /// The 32 nix32 characters before the first dash.
    public let hashPart: String
    /// What follows the dash.
    public let name: String

    /// Parses a base name such as `7rjj86a15146cq1d3qy068lml7n8ykzm-hello-2.12`.
    public init(baseName: some StringProtocol) throws(StorePathError) {
        let s = String(baseName)
        let u = Array(s.utf8)
        guard u.count >= StorePath.hashPartLength + 2 else { throw .tooShort(s) }
        guard u[StorePath.hashPartLength] == UInt8(ascii: "-") else { throw .tooShort(s) }
        let hashPart = String(decoding: u[..<StorePath.hashPartLength], as: UTF8.self)
        guard Nix32.isValid(hashPart) else { throw .badHashPart(s) }
        let name = String(decoding: u[(StorePath.hashPartLength + 1)...], as: UTF8.self)
        try StorePath.checkName(name, path: s)
        self.hashPart = hashPart
        self.name = name
    }

    /// Builds a path from a 20-byte digest and a name.
    public init(digest: [UInt8], name: String) throws(StorePathError) {
        precondition(digest.count == 20, "store path digests are 20 bytes")
        try StorePath.checkName(name, path: name)
        self.hashPart = Nix32.encode(digest)
        self.name = name
    }

    /// The base name, `hash-name`.
    public var baseName: String { hashPart + "-" + name }
    public var description: String { baseName }

    /// True for `foo.drv` paths.
    public var isDerivation: Bool { name.hasSuffix(".drv") }

    public static func < (a: StorePath, b: StorePath) -> Bool { a.baseName < b.baseName }

    /// Validates a store path name with Nix's rules: 1 to 211 characters from
    /// `[A-Za-z0-9+-._?=]`, not starting with a period.
    public static func checkName(_ name: String, path: String) throws(StorePathError) {
        if name.isEmpty { throw .emptyName(path) }
        if name.utf8.count > maxNameLength { throw .nameTooLong(path) }
        if name.utf8.first == UInt8(ascii: ".") { throw .startsWithPeriod(path) }
        for c in name.utf8 where !isNameCharacter(c) {
            throw .illegalCharacter(path, Character(Unicode.Scalar(c)))
        }
    }

    static func isNameCharacter(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "+-._?=".utf8.contains(c)
        }
    }
}

/// Why a store path was refused (texts as Nix's `BadStorePath`).
public enum StorePathError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooShort(String)
    case badHashPart(String)
    case emptyName(String)
    case nameTooLong(String)
    case startsWithPeriod(String)
    case illegalCharacter(String, Character)
    case notInStore(String, storeDir: String)

    public var description: String {
        switch self {
        case let .tooShort(p): return "path '\(p)' is not a valid store path (expected '<32-character hash>-<name>')"
        case let .badHashPart(p): return "store path '\(p)' has an invalid hash part (not nix32)"
        case let .emptyName(p): return "store path '\(p)' has an empty name"
        case let .nameTooLong(p): return "store path '\(p)' has a name longer than \(StorePath.maxNameLength) characters"
        case let .startsWithPeriod(p): return "store path '\(p)' starts with illegal character '.'"
        case let .illegalCharacter(p, c): return "store path '\(p)' contains illegal character '\(c)'"
        case let .notInStore(p, dir): return "path '\(p)' is not in the Nix store '\(dir)'"
        }
    }
}
