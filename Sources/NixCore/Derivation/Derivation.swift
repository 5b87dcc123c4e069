/// A store derivation (`.drv` file), as Nix's `Derivation`: outputs, input derivations with
/// the outputs wanted from each, input sources, system, builder, arguments and environment.
/// Parse with `Derivation(parsing:name:storeDirectory:)`, print with `render(in:)`.
public struct Derivation: Sendable, Hashable {
    /// The derivation's name (its `.drv` file's name without `.drv`); output paths use it.
    public var name: String
    /// Output name → output.
    public var outputs: [String: DerivationOutput]
    /// Input derivation → the outputs wanted from it.
    public var inputDrvs: [StorePath: InputDrvOutputs]
    /// Input sources (plain store paths, including `.drv` files used as sources).
    public var inputSrcs: Set<StorePath>
    /// `platform` in Nix (`x86_64-linux`).
    public var system: String
    public var builder: String
    public var args: [String]
    /// Environment (including `__json` for structured attributes, kept as text).
    public var env: [String: String]

    public init(name: String, outputs: [String: DerivationOutput], inputDrvs: [StorePath: InputDrvOutputs] = [:],
                inputSrcs: Set<StorePath> = [], system: String, builder: String, args: [String] = [],
                env: [String: String] = [:]) {
        self.name = name
        self.outputs = outputs
        self.inputDrvs = inputDrvs
        self.inputSrcs = inputSrcs
        self.system = system
        self.builder = builder
        self.args = args
        self.env = env
    }

    /// Output names, sorted as Nix lists them.
    public var outputNames: [String] { outputs.keys.sorted(by: Derivation.byteOrder) }

    /// True for `builtin:fetchurl` and friends.
    public var isBuiltin: Bool { builder.hasPrefix("builtin:") }

    /// True when some input takes an output of an output (dynamic derivations); such a
    /// derivation is written as `DrvWithVersion("xp-dyn-drv",…)`.
    public var hasDynamicInputs: Bool { inputDrvs.values.contains { !$0.dynamicOutputs.isEmpty } }

    /// The derivation name a `.drv` path stands for: its name without `.drv` (Nix's
    /// `Derivation::nameFromPath`; the wire's BasicDerivation carries no name of its own).
    public static func name(fromDrvPath drvPath: StorePath) -> String {
        drvPath.isDerivation ? String(drvPath.name.dropLast(4)) : drvPath.name
    }

    /// `drvName` for `out`, `drvName-output` otherwise (Nix's `outputPathName`).
    public static func outputPathName(drvName: String, outputName: String) -> String {
        outputName == "out" ? drvName : drvName + "-" + outputName
    }

    /// Orders strings by their UTF-8 bytes, as `std::map<std::string, …>` does.
    static func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// The `.drv` file's own store path: a text path over the ATerm, referring to the input
    /// derivations and sources (Nix's `writeDerivation`).
    public func storePath(in dir: StoreDirectory) throws(DerivationError) -> StorePath {
        let text = try render(in: dir)
        let refs = Array(inputSrcs.union(inputDrvs.keys))
        do {
            return try dir.makeTextPath(name: name + ".drv", contentHash: HashSink.hash(.sha256, string: text), references: refs)
        } catch {
            throw .badDerivationName(name, error)
        }
    }

    /// Each output with its path where known before building.
    public func outputsAndPaths(in dir: StoreDirectory) throws(DerivationError) -> [String: StorePath?] {
        var res: [String: StorePath?] = [:]
        for (n, o) in outputs { res[n] = try o.path(drvName: name, outputName: n, storeDirectory: dir) }
        return res
    }
}

/// What a derivation wants from one input derivation: a set of its outputs and, for
/// dynamic derivations, outputs of those outputs (Nix's `DerivedPathMap<StringSet>::ChildNode`).
public struct InputDrvOutputs: Sendable, Hashable, ExpressibleByArrayLiteral {
    public var outputs: Set<String>
    /// Output name → what is wanted from the derivation that output is.
    public var dynamicOutputs: [String: InputDrvOutputs]

    public init(_ outputs: Set<String>, dynamicOutputs: [String: InputDrvOutputs] = [:]) {
        self.outputs = outputs
        self.dynamicOutputs = dynamicOutputs
    }

    public init(arrayLiteral elements: String...) { self.init(Set(elements)) }
}

/// The kind of a derivation as a whole, derived from its outputs (Nix's `DerivationType`).
public enum DerivationType: Sendable, Hashable {
    case inputAddressed(deferred: Bool)
    case contentAddressed(fixed: Bool)
    case impure

    public var isFixed: Bool { self == .contentAddressed(fixed: true) }
    public var isPure: Bool { self != .impure }
    /// Whether all output paths are known before building.
    public var hasKnownOutputPaths: Bool {
        switch self {
        case let .inputAddressed(deferred): return !deferred
        case let .contentAddressed(fixed): return fixed
        case .impure: return false
        }
    }
}

extension Derivation {
    /// Classifies the outputs; mixtures Nix refuses are errors with Nix's texts.
    public func type() throws(DerivationError) -> DerivationType {
        var ia = 0, fixed: [String] = [], floating = 0, deferred = 0, impure = 0
        var floatingAlgo: HashAlgorithm?
        for (n, o) in outputs {
            switch o {
            case .inputAddressed: ia += 1
            case .caFixed: fixed.append(n)
            case let .caFloating(_, algo):
                floating += 1
                if let f = floatingAlgo, f != algo { throw .invalidType("all floating outputs must use the same hash type") }
                floatingAlgo = algo
            case .deferred: deferred += 1
            case .impure: impure += 1
            }
        }
        let kinds = [ia, fixed.count, floating, deferred, impure].filter { $0 > 0 }.count
        if kinds == 0 { throw .invalidType("must have at least one output") }
        if kinds > 1 { throw .invalidType("can't mix derivation output types") }
        if ia > 0 { return .inputAddressed(deferred: false) }
        if !fixed.isEmpty {
            if fixed.count > 1 { throw .invalidType("only one fixed output is allowed for now") }
            if fixed[0] != "out" { throw .invalidType("single fixed output must be named \"out\"") }
            return .contentAddressed(fixed: true)
        }
        if floating > 0 { return .contentAddressed(fixed: false) }
        if deferred > 0 { return .inputAddressed(deferred: true) }
        return .impure
    }
}

/// Why a derivation (or one of its fields) is not valid; texts follow Nix's.
public enum DerivationError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownHashAlgorithm(String)
    case badOutputHash(output: String, String)
    case badStorePath(String, StorePathError)
    case badOutputName(drvName: String, output: String, StorePathError)
    case badDerivationName(String, StorePathError)
    case outputPathNotAllowed(output: String, kind: String)
    case fixedOutputPathMismatch(output: String, path: String)
    case invalidType(String)
    case structuredAttrs(String)
    case attributeType(name: String, expected: String)
    case missingOutput(drv: String, output: String)
    case outputPathUnknown(drv: String, output: String)
    case unresolvable(StorePath, String)
    case dynamicInputs(StorePath)

    public var description: String {
        switch self {
        case let .unknownHashAlgorithm(s): return "unknown hash algorithm in '\(s)'"
        case let .badOutputHash(o, h): return "invalid hash '\(h)' for derivation output '\(o)'"
        case let .badStorePath(p, e): return "bad store path '\(p)' in derivation: \(e)"
        case let .badOutputName(d, o, e): return "derivation '\(d)' output '\(o)' gives an invalid path name: \(e)"
        case let .badDerivationName(n, e): return "derivation name '\(n)' gives an invalid '.drv' path: \(e)"
        case let .outputPathNotAllowed(_, kind): return "\(kind) derivation output should not specify output path"
        case let .fixedOutputPathMismatch(o, p):
            return "derivation output '\(o)' has path '\(p)', which does not match its content address"
        case let .invalidType(s): return s
        case let .structuredAttrs(s): return "cannot process __json attribute: \(s)"
        case let .attributeType(n, e): return "attribute '\(n)' of derivation must be \(e)"
        case let .missingOutput(d, o): return "derivation '\(d)' has no output '\(o)'"
        case let .outputPathUnknown(d, o):
            return "output '\(o)' of derivation '\(d)' has no known path yet (content-addressed or deferred)"
        case let .unresolvable(p, e): return "cannot read derivation '\(p)': \(e)"
        case let .dynamicInputs(p):
            return "derivation '\(p)' has dynamic inputs (outputs of outputs); resolve them before hashing"
        }
    }
}
