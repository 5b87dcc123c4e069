/// How a content-addressed path's files were hashed (Nix's `FileIngestionMethod`).
public enum FileIngestionMethod: Sendable, Hashable {
    /// The hash of the file's bytes (`fixed:sha1:...`).
    case flat
    /// The hash of the NAR serialisation (`fixed:r:sha256:...`).
    case recursive
}

/// A path's content address, as in a narinfo `CA:` field or the worker protocol:
/// `text:sha256:<nix32>`, `fixed:r:sha256:<nix32>` or `fixed:<algo>:<nix32>`.
public enum ContentAddress: Sendable, Hashable, CustomStringConvertible {
    /// `builtins.toFile` / `addTextToStore`; always SHA-256.
    case text(Hash)
    /// `nix-store --add`, fixed-output derivations.
    case fixed(FileIngestionMethod, Hash)

    /// The hash the address carries.
    public var hash: Hash {
        switch self {
        case let .text(h), let .fixed(_, h): return h
        }
    }

    /// Nix's `renderContentAddress`.
    public var description: String {
        switch self {
        case let .text(h): return "text:" + h.string(.nix32)
        case let .fixed(method, h): return "fixed:" + (method == .recursive ? "r:" : "") + h.string(.nix32)
        }
    }

    /// Nix's `parseContentAddress`: `<prefix>:[r:]<algo>:<digest>` with the digest in
    /// base16, nix32 or base64 (not SRI).
    public init(parsing input: some StringProtocol) throws(ContentAddressError) {
        let whole = String(input)
        var rest = Substring(whole)
        guard let prefix = ContentAddress.splitPrefix(&rest) else { throw .notPrefixed(whole) }
        let method: FileIngestionMethod?
        switch prefix {
        case "text":
            method = nil
        case "fixed":
            if rest.hasPrefix("r:") {
                rest = rest.dropFirst(2)
                method = .recursive
            } else {
                method = .flat
            }
        default:
            throw .unknownPrefix(whole, prefix: String(prefix))
        }
        guard let algoName = ContentAddress.splitPrefix(&rest) else { throw .noAlgorithm(whole) }
        guard let algo = HashAlgorithm(name: algoName) else {
            throw .badHash(whole, .unknownAlgorithm(input: whole, name: String(algoName)))
        }
        if method == nil && algo != .sha256 { throw .textNotSHA256(whole, found: algo) }
        // The digest alone, never SRI: `Hash(parsing:)` would take a `-` as SRI.
        guard !rest.contains("-") && !rest.contains(":") else {
            throw .badHash(whole, .wrongLength(input: String(rest), algorithm: algo))
        }
        let hash: Hash
        do {
            hash = try Hash(parsing: rest, algorithm: algo)
        } catch {
            throw .badHash(whole, error)
        }
        if let method {
            self = .fixed(method, hash)
        } else {
            self = .text(hash)
        }
    }

    /// Takes `x:` off the front of `s`, returning `x`; nil when there is no colon.
    private static func splitPrefix(_ s: inout Substring) -> Substring? {
        guard let colon = s.firstIndex(of: ":") else { return nil }
        let prefix = s[..<colon]
        s = s[s.index(after: colon)...]
        return prefix
    }
}

/// Why a content address was refused (texts after Nix's).
public enum ContentAddressError: Error, Equatable, Sendable, CustomStringConvertible {
    case notPrefixed(String)
    case unknownPrefix(String, prefix: String)
    case noAlgorithm(String)
    case textNotSHA256(String, found: HashAlgorithm)
    case badHash(String, HashParseError)

    public var description: String {
        switch self {
        case let .notPrefixed(s):
            return "not a content address because it is not in the form '<prefix>:<rest>': \(s)"
        case let .unknownPrefix(_, prefix):
            return "content address prefix '\(prefix)' is unrecognized. Recognized prefixes are 'text' or 'fixed'"
        case let .noAlgorithm(s):
            return "content address hash must be in form '<algo>:<hash>', but found: \(s)"
        case let .textNotSHA256(_, found):
            return "text content address hash should use sha256, but instead uses \(found.rawValue)"
        case let .badHash(s, e):
            return "invalid content address '\(s)': \(e)"
        }
    }
}
