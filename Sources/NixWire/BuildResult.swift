import NixCore

/// BuildResult status codes, numbered as on the wire.
public enum BuildStatus: UInt64, Sendable, Hashable, CaseIterable {
    case built = 0, substituted, alreadyValid, permanentFailure, inputRejected, outputRejected,
         transientFailure, cachedFailure, timedOut, miscFailure, dependencyFailed, logLimitExceeded,
         notDeterministic, resolvesToAlreadyValid, noSubstituters

    public var isSuccess: Bool {
        switch self {
        case .built, .substituted, .alreadyValid, .resolvesToAlreadyValid: return true
        default: return false
        }
    }

    /// Nix's name for the status (`Built`, `OutputRejected`...).
    public var name: String {
        switch self {
        case .built: return "Built"
        case .substituted: return "Substituted"
        case .alreadyValid: return "AlreadyValid"
        case .permanentFailure: return "PermanentFailure"
        case .inputRejected: return "InputRejected"
        case .outputRejected: return "OutputRejected"
        case .transientFailure: return "TransientFailure"
        case .cachedFailure: return "CachedFailure"
        case .timedOut: return "TimedOut"
        case .miscFailure: return "MiscFailure"
        case .dependencyFailed: return "DependencyFailed"
        case .logLimitExceeded: return "LogLimitExceeded"
        case .notDeterministic: return "NotDeterministic"
        case .resolvesToAlreadyValid: return "ResolvesToAlreadyValid"
        case .noSubstituters: return "NoSubstituters"
        }
    }
}

/// One output a build produced.
public struct BuiltOutput: Sendable, Hashable {
    public var outPath: StorePath
    public var signatures: Set<String>
    /// The JSON realisation it came in (1.28 to 1.37), kept so it re-encodes exactly.
    public var realisation: Realisation?

    public init(outPath: StorePath, signatures: Set<String> = [], realisation: Realisation? = nil) {
        self.outPath = outPath
        self.signatures = signatures
        self.realisation = realisation
    }
}

/// The outcome of building or substituting (BuildDerivation, BuildPathsWithResults).
public struct BuildResult: Sendable, Hashable {
    public var status: BuildStatus
    public var errorMsg: String
    /// 1.29+.
    public var timesBuilt: Int
    public var isNonDeterministic: Bool
    public var startTime: Int64
    public var stopTime: Int64
    /// Microseconds of CPU time (1.37+).
    public var cpuUser: Int64?
    public var cpuSystem: Int64?
    /// By output name (1.28+).
    public var builtOutputs: [String: BuiltOutput]

    public init(status: BuildStatus, errorMsg: String = "", timesBuilt: Int = 0, isNonDeterministic: Bool = false,
                startTime: Int64 = 0, stopTime: Int64 = 0, cpuUser: Int64? = nil, cpuSystem: Int64? = nil,
                builtOutputs: [String: BuiltOutput] = [:]) {
        self.status = status
        self.errorMsg = errorMsg
        self.timesBuilt = timesBuilt
        self.isNonDeterministic = isNonDeterministic
        self.startTime = startTime
        self.stopTime = stopTime
        self.cpuUser = cpuUser
        self.cpuSystem = cpuSystem
        self.builtOutputs = builtOutputs
    }

    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        let v = ctx.version
        w.writeU64(status.rawValue)
        w.writeString(errorMsg)
        if v.atLeast(29) {
            w.writeInt(timesBuilt)
            w.writeBool(isNonDeterministic)
            w.writeInt64(startTime)
            w.writeInt64(stopTime)
        }
        if v.atLeast(37) {
            for t in [cpuUser, cpuSystem] {
                if let t {
                    w.writeU64(1)
                    w.writeInt64(t)
                } else {
                    w.writeU64(0)
                }
            }
        }
        if v.has(WorkerProtocolVersion.featureRealisationWithPath) {
            w.writeU64(UInt64(builtOutputs.count))
            for name in WireWriter.sortedByBytes(builtOutputs.keys) {
                w.writeString(name)
                let o = builtOutputs[name]!
                UnkeyedRealisation(outPath: o.outPath, signatures: o.signatures).write(to: &w, ctx)
            }
        } else if v.atLeast(28) {
            // Keyed by `hash!name`; without the original realisation Nix's compat form
            // (dummy hash, id and outPath only), which Nix 2.8 reads.
            var map: [String: String] = [:]
            for (name, o) in builtOutputs {
                let r = o.realisation.flatMap { $0.id.outputName == name ? $0 : nil }
                    ?? Realisation(id: .dummy(name), outPath: o.outPath, signatures: nil, dependentRealisations: nil)
                map[r.id.description] = r.json
            }
            w.writeStringMap(map)
        }
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> BuildResult {
        let v = ctx.version
        let raw = try r.readU64("build status")
        guard let status = BuildStatus(rawValue: raw) else { throw .badNumber(reading: "build status", value: raw) }
        var res = BuildResult(status: status, errorMsg: try r.readString("build error message"))
        if v.atLeast(29) {
            res.timesBuilt = try r.readInt("timesBuilt")
            res.isNonDeterministic = try r.readBool("isNonDeterministic")
            res.startTime = try r.readInt64("startTime")
            res.stopTime = try r.readInt64("stopTime")
        }
        if v.atLeast(37) {
            res.cpuUser = try readOptionalDuration(&r, "cpuUser")
            res.cpuSystem = try readOptionalDuration(&r, "cpuSystem")
        }
        if v.has(WorkerProtocolVersion.featureRealisationWithPath) {
            let n = try r.readCount("builtOutputs")
            for _ in 0..<n {
                let name = try r.readString("output name")
                let u = try UnkeyedRealisation.read(from: &r, ctx)
                res.builtOutputs[name] = BuiltOutput(outPath: u.outPath, signatures: u.signatures)
            }
        } else if v.atLeast(28) {
            for (key, json) in try r.readStringMap("builtOutputs") {
                let id = try DrvOutput(parsing: key)
                let real = try Realisation(json: json)
                res.builtOutputs[id.outputName] = BuiltOutput(outPath: real.outPath, signatures: Set(real.signatures ?? []),
                                                              realisation: real)
            }
        }
        return res
    }

    private static func readOptionalDuration(_ r: inout WireReader, _ what: String) throws(WireError) -> Int64? {
        switch try r.readU64(what) {
        case 0: return nil
        case 1: return try r.readInt64(what)
        case let tag: throw .badNumber(reading: what + " tag", value: tag)
        }
    }
}

/// A build result with the path it is for (BuildPathsWithResults).
public struct KeyedBuildResult: Sendable, Hashable {
    public var path: DerivedPath
    public var result: BuildResult

    public init(path: DerivedPath, result: BuildResult) {
        self.path = path
        self.result = result
    }

    public func write(to w: inout WireWriter, _ ctx: WireContext) throws(WireError) {
        try path.write(to: &w, ctx)
        result.write(to: &w, ctx)
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> KeyedBuildResult {
        let p = try DerivedPath.read(from: &r, ctx)
        return KeyedBuildResult(path: p, result: try BuildResult.read(from: &r, ctx))
    }
}
