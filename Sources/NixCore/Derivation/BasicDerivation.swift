/// A derivation without input derivations, as the `BuildDerivation` operation sends it: the
/// builder gets the input closure as plain sources (Nix's `BasicDerivation`).
public struct BasicDerivation: Sendable, Hashable {
    public var name: String
    public var outputs: [String: DerivationOutput]
    /// The full input closure: the derivation's sources plus the outputs of its inputs.
    public var inputSrcs: Set<StorePath>
    public var system: String
    public var builder: String
    public var args: [String]
    public var env: [String: String]

    public init(name: String, outputs: [String: DerivationOutput], inputSrcs: Set<StorePath>, system: String,
                builder: String, args: [String], env: [String: String]) {
        self.name = name
        self.outputs = outputs
        self.inputSrcs = inputSrcs
        self.system = system
        self.builder = builder
        self.args = args
        self.env = env
    }

    /// The view Nix's build hook sends: `drv` with its sources replaced by `inputClosure`
    /// (the closure of its sources and of the wanted outputs of its input derivations; the
    /// sources are added if missing).
    public init(_ drv: Derivation, inputClosure: Set<StorePath>) {
        self.init(name: drv.name, outputs: drv.outputs, inputSrcs: inputClosure.union(drv.inputSrcs),
                  system: drv.system, builder: drv.builder, args: drv.args, env: drv.env)
    }

    /// Output names, sorted.
    public var outputNames: [String] { outputs.keys.sorted(by: Derivation.byteOrder) }

    /// Outputs in order with the three fields the wire carries (path, `method+algo`, hash).
    public func outputFields(in dir: StoreDirectory) throws(DerivationError) -> [(name: String, path: String, hashAlgo: String, hash: String)] {
        var res: [(name: String, path: String, hashAlgo: String, hash: String)] = []
        for n in outputNames {
            let f = try outputs[n]!.fields(drvName: name, outputName: n, storeDirectory: dir)
            res.append((n, f.path, f.hashAlgo, f.hash))
        }
        return res
    }

    /// Each output's path where known before building.
    public func outputPaths(in dir: StoreDirectory) throws(DerivationError) -> [String: StorePath?] {
        var res: [String: StorePath?] = [:]
        for (n, o) in outputs { res[n] = try o.path(drvName: name, outputName: n, storeDirectory: dir) }
        return res
    }

    /// The derivation again, with no input derivations (for ATerm printing or hashing).
    public var asDerivation: Derivation {
        Derivation(name: name, outputs: outputs, inputSrcs: inputSrcs, system: system, builder: builder,
                   args: args, env: env)
    }
}

extension Derivation {
    /// The paths of the outputs wanted from the input derivations, read through `resolve`
    /// (the direct inputs of a build besides `inputSrcs`; a store adds their closure). An
    /// output whose path is not known before building (floating, deferred) is an error.
    public func inputOutputPaths(in dir: StoreDirectory,
                                 resolve: (StorePath) throws -> Derivation) throws(DerivationError) -> Set<StorePath> {
        var res = Set<StorePath>()
        for (drvPath, wanted) in inputDrvs {
            guard wanted.dynamicOutputs.isEmpty else { throw .dynamicInputs(drvPath) }
            let input: Derivation
            do { input = try resolve(drvPath) } catch { throw .unresolvable(drvPath, "\(error)") }
            for name in wanted.outputs {
                guard let output = input.outputs[name] else { throw .missingOutput(drv: dir.print(drvPath), output: name) }
                guard let path = try output.path(drvName: input.name, outputName: name, storeDirectory: dir) else {
                    throw .outputPathUnknown(drv: dir.print(drvPath), output: name)
                }
                res.insert(path)
            }
        }
        return res
    }
}
