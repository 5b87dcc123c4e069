/// The hash algorithms Nix knows, named as Nix names them.
public enum HashAlgorithm: String, Sendable, CaseIterable, Hashable {
    case md5, sha1, sha256, sha512

    /// Digest size in bytes.
    public var size: Int {
        switch self {
        case .md5: return 16
        case .sha1: return 20
        case .sha256: return 32
        case .sha512: return 64
        }
    }

    /// Parses "sha256" etc.; nil for names Nix does not know.
    public init?(name: some StringProtocol) {
        self.init(rawValue: String(name))
    }
}

/// How a hash is printed.
public enum HashFormat: Sendable {
    /// Lower-case hex.
    case base16
    /// Nix's base-32 (the form in store paths and narinfo files).
    case nix32
    case base64
    /// `sha256-<base64>` (Subresource Integrity).
    case sri
}
