/// The result of `hashDerivationModulo`: one hash per output, and whether the output paths
/// built on it are final (`regular`) or wait on floating content-addressed inputs.
public struct DrvHash: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case regular
        case deferred
    }

    public var hashes: [String: Hash]
    public var kind: Kind

    public init(hashes: [String: Hash], kind: Kind) {
        self.hashes = hashes
        self.kind = kind
    }
}

/// Computes Nix's `hashDerivationModulo` and, from it, output paths. Input derivations are
/// read through `resolve` (a store, a directory of `.drv` files…) and their hashes memoised,
/// as Nix's `drvHashes` cache does.
public struct DerivationHasher {
    public let storeDirectory: StoreDirectory
    private let resolve: (StorePath) throws -> Derivation
    private var cache: [StorePath: DrvHash] = [:]

    public init(storeDirectory: StoreDirectory = .default, resolve: @escaping (StorePath) throws -> Derivation) {
        self.storeDirectory = storeDirectory
        self.resolve = resolve
    }

    /// Nix's `impureOutputHash`.
    static let impureOutputHash = HashSink.hash(.sha256, string: "impure")

    /// A fixed-output derivation hashes to `sha256("fixed:out:<method><algo>:<base16>:<path>")`
    /// per output; any other to the SHA-256 of its ATerm with every input derivation replaced
    /// by the base16 hash modulo of the outputs used, and, with `maskOutputs`, output paths and
    /// output variables blanked.
    public mutating func hashModulo(_ drv: Derivation, maskOutputs: Bool) throws(DerivationError) -> DrvHash {
        let type = try drv.type()
        let dir = storeDirectory
        if type.isFixed {
            var hashes: [String: Hash] = [:]
            for (name, output) in drv.outputs {
                let f = try output.fields(drvName: drv.name, outputName: name, storeDirectory: dir)
                hashes[name] = HashSink.hash(.sha256, string: "fixed:out:" + f.hashAlgo + ":" + f.hash + ":" + f.path)
            }
            return DrvHash(hashes: hashes, kind: .regular)
        }
        if !type.isPure {
            return DrvHash(hashes: drv.outputs.mapValues { _ in DerivationHasher.impureOutputHash }, kind: .deferred)
        }
        var kind: DrvHash.Kind = type == .contentAddressed(fixed: false) ? .deferred : .regular
        var inputs: [String: Set<String>] = [:]
        for (drvPath, wanted) in drv.inputDrvs {
            guard wanted.dynamicOutputs.isEmpty else { throw .dynamicInputs(drvPath) }
            let res = try pathHashModulo(drvPath)
            if res.kind == .deferred { kind = .deferred }
            for output in wanted.outputs {
                guard let h = res.hashes[output] else { throw .missingOutput(drv: dir.print(drvPath), output: output) }
                inputs[h.string(.base16, withAlgorithm: false), default: []].insert(output)
            }
        }
        var w = ATermWriter()
        let sorted = inputs.sorted { Derivation.byteOrder($0.key, $1.key) }.map { ($0.key, $0.value) }
        try w.write(drv, dir: dir, maskOutputs: maskOutputs, inputsOverride: sorted)
        let hash = HashSink.hash(.sha256, string: w.out)
        return DrvHash(hashes: drv.outputs.mapValues { _ in hash }, kind: kind)
    }

    /// The unmasked hash modulo of an input derivation, memoised (Nix's `pathDerivationModulo`).
    public mutating func pathHashModulo(_ drvPath: StorePath) throws(DerivationError) -> DrvHash {
        if let h = cache[drvPath] { return h }
        let drv: Derivation
        do { drv = try resolve(drvPath) } catch { throw .unresolvable(drvPath, "\(error)") }
        let h = try hashModulo(drv, maskOutputs: false)
        cache[drvPath] = h
        return h
    }

    /// The output paths Nix gives the derivation at instantiation (`derivationStrict`):
    /// fixed outputs from their content address, input-addressed ones from the masked hash
    /// modulo; nil where the path is not known before building (floating, impure, deferred).
    public mutating func outputPaths(_ drv: Derivation) throws(DerivationError) -> [String: StorePath?] {
        let type = try drv.type()
        switch type {
        case .contentAddressed(fixed: true):
            return try drv.outputsAndPaths(in: storeDirectory)
        case .contentAddressed(fixed: false), .impure:
            return drv.outputs.mapValues { _ in nil }
        case .inputAddressed:
            let h = try hashModulo(drv, maskOutputs: true)
            guard h.kind == .regular else { return drv.outputs.mapValues { _ in nil } }
            var res: [String: StorePath?] = [:]
            for (name, hash) in h.hashes {
                do {
                    res[name] = try storeDirectory.makeOutputPath(output: name, drvHash: hash, name: drv.name)
                } catch {
                    throw .badOutputName(drvName: drv.name, output: name, error)
                }
            }
            return res
        }
    }
}
