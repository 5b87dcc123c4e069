/// How a content-addressed output's bytes are hashed (Nix's `ContentAddressMethod`), with
/// the prefix it takes in a derivation's `hashAlgo` field (`r:sha256`, `text:sha256`).
public enum ContentAddressMethod: String, Sendable, Hashable, CaseIterable {
    /// The file's bytes (no prefix).
    case flat
    /// The NAR serialisation (`r:`).
    case nar
    /// A text file with references (`text:`, used by dynamic derivations).
    case text
    /// Git tree hashing (`git:`).
    case git

    /// The prefix before the algorithm name: `""`, `r:`, `text:`, `git:`.
    public var prefix: String {
        switch self {
        case .flat: return ""
        case .nar: return "r:"
        case .text: return "text:"
        case .git: return "git:"
        }
    }

    /// Splits `r:sha256` into its method and algorithm (Nix's `parsePrefix` + `parseHashAlgo`).
    static func parse(methodAlgo s: String) throws(DerivationError) -> (ContentAddressMethod, HashAlgorithm) {
        var method = ContentAddressMethod.flat
        var rest = Substring(s)
        for m in [ContentAddressMethod.nar, .text, .git] where rest.hasPrefix(m.prefix) {
            method = m
            rest = rest.dropFirst(m.prefix.count)
            break
        }
        guard let algo = HashAlgorithm(name: rest) else { throw .unknownHashAlgorithm(s) }
        return (method, algo)
    }
}

/// One output of a derivation, in the five kinds Nix knows (`DerivationOutput`).
public enum DerivationOutput: Sendable, Hashable {
    /// Output path fixed by the derivation's inputs (`("out","/nix/store/…","","")`).
    case inputAddressed(StorePath)
    /// Fixed-output: the content hash is known in advance (`fetchurl`).
    case caFixed(method: ContentAddressMethod, hash: Hash)
    /// Content-addressed, hash known only after the build (`ca-derivations`).
    case caFloating(method: ContentAddressMethod, algorithm: HashAlgorithm)
    /// Input-addressed, but the path is not yet known (depends on a floating CA input).
    case deferred
    /// An impure derivation's output (`impure-derivations`).
    case impure(method: ContentAddressMethod, algorithm: HashAlgorithm)

    /// Parses the three string fields an output has in ATerm and on the wire (Nix's
    /// `parseOutput`). A fixed output's stated path must match its content address.
    public init(path pathS: String, hashAlgo: String, hash: String, drvName: String, outputName: String,
                storeDirectory: StoreDirectory) throws(DerivationError) {
        guard !hashAlgo.isEmpty else {
            if pathS.isEmpty { self = .deferred; return }
            self = .inputAddressed(try DerivationOutput.parsePath(pathS, storeDirectory))
            return
        }
        let (method, algo) = try ContentAddressMethod.parse(methodAlgo: hashAlgo)
        if hash == "impure" {
            guard pathS.isEmpty else { throw .outputPathNotAllowed(output: outputName, kind: "impure") }
            self = .impure(method: method, algorithm: algo)
        } else if !hash.isEmpty {
            let stated = try DerivationOutput.parsePath(pathS, storeDirectory)
            // Nix's parseNonSRIUnprefixed: a bare digest, no `sha256:` / `sha256-` form.
            guard !hash.contains(":") && !hash.contains("-") else { throw .badOutputHash(output: outputName, hash) }
            let h: Hash
            do { h = try Hash(parsing: hash, algorithm: algo) } catch { throw .badOutputHash(output: outputName, hash) }
            self = .caFixed(method: method, hash: h)
            let expected = try fixedPath(drvName: drvName, outputName: outputName, storeDirectory: storeDirectory)
            guard expected == stated else { throw .fixedOutputPathMismatch(output: outputName, path: pathS) }
        } else {
            guard pathS.isEmpty else { throw .outputPathNotAllowed(output: outputName, kind: "content-addressing") }
            self = .caFloating(method: method, algorithm: algo)
        }
    }

    static func parsePath(_ s: String, _ dir: StoreDirectory) throws(DerivationError) -> StorePath {
        do { return try dir.parse(s) } catch { throw .badStorePath(s, error) }
    }

    /// The three ATerm / wire fields: path (empty when unknown), `method+algo`, hash (base16).
    public func fields(drvName: String, outputName: String, storeDirectory: StoreDirectory) throws(DerivationError) -> (path: String, hashAlgo: String, hash: String) {
        switch self {
        case let .inputAddressed(p):
            return (storeDirectory.print(p), "", "")
        case let .caFixed(method, hash):
            let p = try fixedPath(drvName: drvName, outputName: outputName, storeDirectory: storeDirectory)
            return (storeDirectory.print(p), method.prefix + hash.algorithm.rawValue, hash.string(.base16, withAlgorithm: false))
        case let .caFloating(method, algo):
            return ("", method.prefix + algo.rawValue, "")
        case .deferred:
            return ("", "", "")
        case let .impure(method, algo):
            return ("", method.prefix + algo.rawValue, "impure")
        }
    }

    /// The output's path when it is known before building (input-addressed, fixed-output).
    public func path(drvName: String, outputName: String, storeDirectory: StoreDirectory) throws(DerivationError) -> StorePath? {
        switch self {
        case let .inputAddressed(p): return p
        case .caFixed: return try fixedPath(drvName: drvName, outputName: outputName, storeDirectory: storeDirectory)
        case .caFloating, .deferred, .impure: return nil
        }
    }

    /// A fixed output's path: a function of its content address and name (Nix's
    /// `makeFixedOutputPathFromCA`).
    func fixedPath(drvName: String, outputName: String, storeDirectory dir: StoreDirectory) throws(DerivationError) -> StorePath {
        guard case let .caFixed(method, hash) = self else { preconditionFailure("fixedPath of a non-fixed output") }
        let name = Derivation.outputPathName(drvName: drvName, outputName: outputName)
        switch method {
        case .text where hash.algorithm != .sha256,
             .git where hash.algorithm != .sha1 && hash.algorithm != .sha256:
            throw .badOutputHash(output: outputName, hash.string(.base16))
        default: break
        }
        do {
            switch method {
            case .flat, .nar:
                return try dir.makeFixedOutputPath(name: name, recursive: method == .nar, hash: hash)
            case .text:
                return try dir.makeTextPath(name: name, contentHash: hash, references: [])
            case .git:
                let inner = "fixed:out:git:" + hash.string(.base16) + ":"
                return try dir.makeStorePath(type: "output:out", hash: HashSink.hash(.sha256, string: inner), name: name)
            }
        } catch {
            throw .badOutputName(drvName: drvName, output: outputName, error)
        }
    }
}
