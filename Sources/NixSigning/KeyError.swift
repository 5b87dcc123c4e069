/// A key that cannot be read, parsed or generated. Never quotes key material.
public struct KeyError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case secret, `public`
    }

    public enum Reason: Equatable, Sendable, CustomStringConvertible {
        /// Nothing before the `:` (Nix: "secret key is corrupt").
        case missingName
        /// Nothing after the `:`.
        case missingKey
        case badName(String)
        case badBase64(character: Character)
        /// Decoded to `got` bytes (Nix: "secret key is not valid").
        case wrongLength(got: Int, expected: Int)
        case tooLong(Int)
        /// The file could not be read or written (`strerror` text).
        case io(String)

        init(_ f: KeyBase64.Failure, expected: Int) {
            switch f {
            case let .badCharacter(c): self = .badBase64(character: Character(Unicode.Scalar(c)))
            case let .wrongLength(n): self = .wrongLength(got: n, expected: expected)
            }
        }

        public var description: String {
            switch self {
            case .missingName: return "expected '<key name>:<base64 key>', but the key name is missing"
            case .missingKey: return "expected '<key name>:<base64 key>', but the key is missing"
            case let .badName(n):
                return "key name '\(n)' must be non-empty and contain no ':', whitespace or control characters"
            case let .badBase64(c): return "invalid character in Base64 string: '\(c)'"
            case let .wrongLength(got, expected): return "it decodes to \(got) bytes, expected \(expected)"
            case let .tooLong(n): return "it is \(n) bytes long"
            case let .io(e): return e
            }
        }
    }

    public var kind: Kind
    /// The file the key came from, if any.
    public var source: String?
    public var reason: Reason

    public init(kind: Kind, source: String?, reason: Reason) {
        self.kind = kind
        self.source = source
        self.reason = reason
    }

    public var description: String {
        let what = source.map { "\(kind.rawValue) key file '\($0)'" } ?? "\(kind.rawValue) key"
        switch reason {
        case let .badName(n):
            return "invalid key name '\(n)': it must be non-empty and contain no ':', whitespace or control characters"
        case .wrongLength, .badBase64, .tooLong: return "\(what) is not valid: \(reason)"
        case .io: return "cannot access \(what): \(reason)"
        default: return "\(what) is corrupt: \(reason)"
        }
    }
}
