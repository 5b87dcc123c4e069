/// What a store knows about one valid path (Nix's `ValidPathInfo`), shared by narinfo files
/// and the worker protocol.
public struct PathInfo: Sendable, Hashable {
    public var path: StorePath
    public var deriver: StorePath?
    /// Hash of the NAR serialisation; SHA-256 in practice (fingerprints require it).
    public var narHash: Hash
    /// Store paths this one refers to (possibly itself).
    public var references: Set<StorePath>
    /// Seconds since the epoch; 0 when unknown (binary caches do not record it).
    public var registrationTime: Int64
    /// NAR size in bytes; 0 means unknown.
    public var narSize: UInt64
    /// True for outputs built locally (trusted without signatures).
    public var ultimate: Bool
    /// Signatures as `keyname:base64`, not necessarily verified.
    public var sigs: Set<String>
    /// If present, a claim that the path is content-addressed (check it with
    /// `contentAddressCheck`).
    public var ca: ContentAddress?

    public init(path: StorePath, deriver: StorePath? = nil, narHash: Hash, references: Set<StorePath> = [],
                registrationTime: Int64 = 0, narSize: UInt64, ultimate: Bool = false,
                sigs: Set<String> = [], ca: ContentAddress? = nil) {
        self.path = path
        self.deriver = deriver
        self.narHash = narHash
        self.references = references
        self.registrationTime = registrationTime
        self.narSize = narSize
        self.ultimate = ultimate
        self.sigs = sigs
        self.ca = ca
    }

    /// References as base names, sorted (narinfo `References:` order).
    public var sortedReferences: [StorePath] { references.sorted() }

    /// The text binary-cache signatures sign (Nix's `ValidPathInfo::fingerprint`):
    /// `1;<path>;sha256:<nix32 narHash>;<narSize>;<ref1>,<ref2>...` with full, sorted paths.
    public func fingerprint(in storeDir: StoreDirectory = .default) throws(FingerprintError) -> String {
        let full = storeDir.print(path)
        guard narSize != 0 else { throw .unknownSize(path: full) }
        guard narHash.algorithm == .sha256 else { throw .notSHA256(path: full, algorithm: narHash.algorithm) }
        var s = "1;"
        s.reserveCapacity(120 + references.count * (full.utf8.count + 1))
        s += full
        s += ";"
        s += narHash.string(.nix32)
        s += ";"
        s += String(narSize)
        s += ";"
        // Base-name order equals full-path order: every path has the same prefix.
        var first = true
        for r in references.count > 1 ? references.sorted() : Array(references) {
            if !first { s += "," }
            first = false
            s += storeDir.path
            s += "/"
            s += r.hashPart
            s += "-"
            s += r.name
        }
        return s
    }

    /// Whether `ca` really produces `path` (Nix's `isContentAddressed`): recomputes the
    /// path from the address, the name and the references. For `fixed:r:sha256` without a
    /// self-reference the address's hash is the NAR hash itself, so it must equal `narHash`
    /// (Nix checks that on import); every other address is only proved by the NAR's contents
    /// (`ContentAddressVerifier`), so the answer is `.needsContent`.
    public func contentAddressCheck(in storeDir: StoreDirectory = .default) -> ContentAddressCheck {
        guard let ca else { return .notContentAddressed }
        let computed: StorePath?
        var narHashProves = false
        switch ca {
        case let .text(hash):
            computed = try? storeDir.makeTextPath(name: path.name, contentHash: hash,
                                                  references: Array(references))
        case let .fixed(method, hash):
            var refs = references
            let selfRef = refs.remove(path) != nil
            if method == .recursive && hash.algorithm == .sha256 {
                computed = try? storeDir.makeFixedOutputPath(name: path.name, recursive: true, hash: hash,
                                                            references: Array(refs), selfReference: selfRef)
                narHashProves = !selfRef
            } else if refs.isEmpty && !selfRef {
                computed = try? storeDir.makeFixedOutputPath(name: path.name, recursive: method == .recursive,
                                                            hash: hash)
            } else {
                // Nix asserts there are none: such a claim cannot be right.
                computed = nil
            }
        }
        guard let computed else { return .mismatch(computed: nil) }
        guard computed == path else { return .mismatch(computed: computed) }
        guard narHashProves else { return .needsContent }
        return ca.hash == narHash ? .valid : .hashMismatch(specified: ca.hash, narHash: narHash)
    }

    /// True when the path carries a content address that its info alone proves.
    public func isContentAddressed(in storeDir: StoreDirectory = .default) -> Bool {
        contentAddressCheck(in: storeDir) == .valid
    }
}

/// The outcome of checking a path's `CA` claim.
public enum ContentAddressCheck: Sendable, Hashable {
    /// No `ca` at all.
    case notContentAddressed
    /// The address, name and references produce the path, and the NAR hash is the
    /// address's hash.
    case valid
    /// The address, name and references produce the path, but only the NAR's contents can
    /// show the address is right (flat, text, other algorithms, self-references): the path
    /// is not trusted by its address until a `ContentAddressVerifier` has seen its NAR.
    case needsContent
    /// `fixed:r:sha256:H` without a self-reference whose `narHash` is not H.
    case hashMismatch(specified: Hash, narHash: Hash)
    /// They produce another path (or none): Nix warns "path '...' claims to be
    /// content-addressed but isn't".
    case mismatch(computed: StorePath?)
}

/// Why a fingerprint cannot be computed (texts as Nix's).
public enum FingerprintError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownSize(path: String)
    case notSHA256(path: String, algorithm: HashAlgorithm)

    public var description: String {
        switch self {
        case let .unknownSize(p):
            return "cannot calculate fingerprint of path '\(p)' because its size is not known"
        case let .notSHA256(p, a):
            return "cannot calculate fingerprint of path '\(p)' because its NAR hash is \(a.rawValue), not sha256"
        }
    }
}
