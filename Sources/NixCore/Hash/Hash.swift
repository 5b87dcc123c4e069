/// A digest together with its algorithm, parsed and printed in all of Nix's forms.
public struct Hash: Sendable, Hashable, CustomStringConvertible {
    public let algorithm: HashAlgorithm
    public let bytes: [UInt8]

    public init(algorithm: HashAlgorithm, bytes: [UInt8]) throws(HashParseError) {
        guard bytes.count == algorithm.size else {
            throw .wrongLength(input: Base16.encode(bytes), algorithm: algorithm)
        }
        self.algorithm = algorithm
        self.bytes = bytes
    }

    init(unchecked algorithm: HashAlgorithm, _ bytes: [UInt8]) {
        self.algorithm = algorithm
        self.bytes = bytes
    }

    /// Prints the hash; `withAlgorithm` adds the `sha256:` prefix (ignored for SRI, which
    /// always has `sha256-`).
    public func string(_ format: HashFormat, withAlgorithm: Bool = true) -> String {
        let prefix = withAlgorithm ? algorithm.rawValue + ":" : ""
        switch format {
        case .base16: return prefix + Base16.encode(bytes)
        case .nix32: return prefix + Nix32.encode(bytes)
        case .base64: return prefix + Base64.encode(bytes)
        case .sri: return algorithm.rawValue + "-" + Base64.encode(bytes)
        }
    }

    /// `sha256:<nix32>`, the form narinfo files and fingerprints use.
    public var description: String { string(.nix32) }

    /// Parses `algo:digest` (digest in base16, nix32 or base64, told apart by length) or SRI
    /// `algo-base64`, as Nix's `Hash::parseAny` does. A bare digest needs `algorithm`.
    public init(parsing input: some StringProtocol, algorithm expected: HashAlgorithm? = nil) throws(HashParseError) {
        let s = String(input)
        var algo = expected
        var rest = Substring(s)
        var isSRI = false
        if let colon = s.firstIndex(of: ":") {
            let name = s[..<colon]
            guard let a = HashAlgorithm(name: name) else { throw .unknownAlgorithm(input: s, name: String(name)) }
            algo = a
            rest = s[s.index(after: colon)...]
        } else if let dash = s.firstIndex(of: "-") {
            // As Nix: a dash (never in base64/base16/nix32) marks SRI, whose prefix must be known.
            let name = s[..<dash]
            guard let a = HashAlgorithm(name: name) else { throw .unknownAlgorithm(input: s, name: String(name)) }
            algo = a
            rest = s[s.index(after: dash)...]
            isSRI = true
        }
        guard let algo else { throw .missingAlgorithm(input: s) }
        if let expected, expected != algo { throw .algorithmMismatch(input: s, expected: expected, found: algo) }
        self = try Hash.decodeDigest(rest, algorithm: algo, sriOnly: isSRI, whole: s)
    }

    private static func decodeDigest(_ digest: Substring, algorithm: HashAlgorithm, sriOnly: Bool, whole: String) throws(HashParseError) -> Hash {
        let n = digest.utf8.count
        let size = algorithm.size
        do {
            if !sriOnly && n == size * 2 {
                return Hash(unchecked: algorithm, try Base16.decode(digest))
            }
            if !sriOnly && n == Nix32.encodedLength(size) {
                return Hash(unchecked: algorithm, try Nix32.decode(digest, byteCount: size))
            }
            if n == (size + 2) / 3 * 4 {
                let bytes = try Base64.decode(digest)
                guard bytes.count == size else { throw HashParseError.wrongLength(input: whole, algorithm: algorithm) }
                return Hash(unchecked: algorithm, bytes)
            }
        } catch let e as EncodingError {
            throw .badEncoding(input: whole, e)
        } catch let e as HashParseError {
            throw e
        } catch {
            throw .wrongLength(input: whole, algorithm: algorithm)
        }
        throw .wrongLength(input: whole, algorithm: algorithm)
    }

    /// Folds the hash into `size` bytes by XOR, as Nix's `compressHash` does for store paths.
    public func compressed(to size: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        for (i, b) in bytes.enumerated() { out[i % size] ^= b }
        return out
    }
}

/// Why a hash string was refused; the texts follow Nix's.
public enum HashParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownAlgorithm(input: String, name: String)
    case missingAlgorithm(input: String)
    case algorithmMismatch(input: String, expected: HashAlgorithm, found: HashAlgorithm)
    case wrongLength(input: String, algorithm: HashAlgorithm)
    case badEncoding(input: String, EncodingError)

    public var description: String {
        switch self {
        case let .unknownAlgorithm(input, name): return "unknown hash algorithm '\(name)' in hash '\(input)'"
        case let .missingAlgorithm(input): return "hash '\(input)' does not include a type"
        case let .algorithmMismatch(input, e, f): return "hash '\(input)' should have type '\(e.rawValue)', got '\(f.rawValue)'"
        case let .wrongLength(input, a): return "hash '\(input)' has wrong length for hash type '\(a.rawValue)'"
        case let .badEncoding(input, e): return "invalid hash '\(input)': \(e)"
        }
    }
}
