import NixCore

/// Every operation code a daemon may receive from clients of protocol 1.21–1.38, numbered
/// as upstream's `WorkerProto::Op` (a superset of `WorkerOp`, which the client side sends).
public enum ServerOp: UInt64, Sendable, Hashable, CaseIterable {
    case isValidPath = 1
    case hasSubstitutes = 3
    case queryReferrers = 6
    case addToStore = 7
    case addTextToStore = 8
    case buildPaths = 9
    case ensurePath = 10
    case addTempRoot = 11
    case addIndirectRoot = 12
    case syncWithGC = 13
    case findRoots = 14
    case queryDeriver = 18
    case setOptions = 19
    case collectGarbage = 20
    case querySubstitutablePathInfo = 21
    case queryDerivationOutputs = 22
    case queryAllValidPaths = 23
    case queryPathInfo = 26
    case importPaths = 27
    case queryDerivationOutputNames = 28
    case queryPathFromHashPart = 29
    case querySubstitutablePathInfos = 30
    case queryValidPaths = 31
    case querySubstitutablePaths = 32
    case queryValidDerivers = 33
    case optimiseStore = 34
    case verifyStore = 35
    case buildDerivation = 36
    case addSignatures = 37
    case narFromPath = 38
    case addToStoreNar = 39
    case queryMissing = 40
    case queryDerivationOutputMap = 41
    case registerDrvOutput = 42
    case queryRealisation = 43
    case addMultipleToStore = 44
    case addBuildLog = 45
    case buildPathsWithResults = 46
    case addPermRoot = 47

    /// Operations whose one argument is a store path.
    static let pathArgument: Set<ServerOp> = [
        .hasSubstitutes, .queryReferrers, .ensurePath, .addTempRoot, .queryDeriver,
        .querySubstitutablePathInfo, .queryDerivationOutputs, .queryDerivationOutputNames,
        .queryValidDerivers, .queryDerivationOutputMap,
    ]
}

/// A request as a daemon receives it, arguments decoded. Data that follows some requests
/// (framed NARs and logs) is not part of the value: `WorkerServer` skips it, as this server
/// never stores what clients send.
public enum IncomingRequest: Sendable, Hashable {
    /// An operation the client side also speaks, decoded by `WorkerRequest.read` without
    /// its data (AddToStoreNar's and AddMultipleToStore's NARs are skipped).
    case worker(WorkerRequest)
    /// An operation whose only argument is a store path (`ServerOp.pathArgument`).
    case pathQuery(ServerOp, StorePath)
    case querySubstitutablePaths(Set<StorePath>)
    case querySubstitutablePathInfos([StorePath])
    case buildPaths([DerivedPath], BuildMode)
    /// AddToStore from 1.25 (its dump is framed and skipped).
    case addToStore(name: String, references: Set<StorePath>)
    case addTextToStore(name: String, references: Set<StorePath>)
    case importPaths
    case addIndirectRoot(String)
    case addPermRoot(StorePath, String)
    case syncWithGC
    case findRoots
    case collectGarbage(action: UInt64)
    case optimiseStore
    case verifyStore(checkContents: Bool, repair: Bool)
    case registerDrvOutput
    case queryRealisation(String)
    /// AddBuildLog: the derivation's base name, as sent (its framed log is skipped).
    case addBuildLog(String)

    public var op: ServerOp {
        switch self {
        case let .worker(w): return ServerOp(rawValue: w.op.rawValue)!
        case let .pathQuery(op, _): return op
        case .querySubstitutablePaths: return .querySubstitutablePaths
        case .querySubstitutablePathInfos: return .querySubstitutablePathInfos
        case .buildPaths: return .buildPaths
        case .addToStore: return .addToStore
        case .addTextToStore: return .addTextToStore
        case .importPaths: return .importPaths
        case .addIndirectRoot: return .addIndirectRoot
        case .addPermRoot: return .addPermRoot
        case .syncWithGC: return .syncWithGC
        case .findRoots: return .findRoots
        case .collectGarbage: return .collectGarbage
        case .optimiseStore: return .optimiseStore
        case .verifyStore: return .verifyStore
        case .registerDrvOutput: return .registerDrvOutput
        case .queryRealisation: return .queryRealisation
        case .addBuildLog: return .addBuildLog
        }
    }

    /// Whether framed data follows the arguments at this version.
    static func hasFramedData(_ op: ServerOp, _ v: WorkerProtocolVersion) -> Bool {
        switch op {
        case .addMultipleToStore, .addBuildLog: return true
        case .addToStoreNar: return v.atLeast(23)
        case .addToStore: return v.atLeast(25)
        default: return false
        }
    }

    /// How one request read turned out.
    enum Decoded {
        case request(IncomingRequest)
        /// An operation this server cannot follow: Nix's daemon sends the error and closes.
        case fatal(op: UInt64, message: String)
    }

    /// Decodes the arguments of one request (server side); nil, consuming nothing, when more
    /// input is needed. Framed data that follows stays in `r`.
    static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> Decoded? {
        var probe = r
        guard let raw = try probe.attempt({ (r: inout WireReader) throws(WireError) in try r.readU64("operation") }) else {
            return nil
        }
        guard let op = ServerOp(rawValue: raw) else {
            _ = r.takeAvailable(max: 8)
            return .fatal(op: raw, message: "invalid operation \(raw)")
        }
        if op == .addToStore && !ctx.version.atLeast(25) {
            // Before 1.25 the dump follows unframed: there is no way to skip it.
            _ = r.takeAvailable(max: 8)
            return .fatal(op: raw, message: "AddToStore before worker protocol 1.25 is not supported by nix-bridge")
        }
        if op == .addToStoreNar {
            return try r.attempt { (r: inout WireReader) throws(WireError) -> Decoded in
                _ = try r.readU64("operation")
                let path = try r.readStorePath("path", ctx)
                var info16 = ctx
                info16.version = WorkerProtocolVersion(minor: 16)
                let info = try UnkeyedValidPathInfo.read(from: &r, info16)
                let repair = try r.readBool("repair")
                let dontCheckSigs = try r.readBool("dontCheckSigs")
                return .request(.worker(.addToStoreNarStreaming(ValidPathInfo(path: path, info: info),
                                                                repair: repair, dontCheckSigs: dontCheckSigs)))
            }
        }
        if WorkerOp(rawValue: raw) != nil {
            return try WorkerRequest.read(from: &r, ctx, includeData: false).map { .request(.worker($0)) }
        }
        return try r.attempt { (r: inout WireReader) throws(WireError) -> Decoded in
            _ = try r.readU64("operation")
            return .request(try readOther(op, from: &r, ctx))
        }
    }

    /// The operations `WorkerRequest` does not know.
    private static func readOther(_ op: ServerOp, from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> IncomingRequest {
        if ServerOp.pathArgument.contains(op) { return .pathQuery(op, try r.readStorePath("path", ctx)) }
        switch op {
        case .querySubstitutablePaths:
            return .querySubstitutablePaths(Set(try r.readStorePaths("paths", ctx)))
        case .querySubstitutablePathInfos:
            if !ctx.version.atLeast(22) { return .querySubstitutablePathInfos(try r.readStorePaths("paths", ctx)) }
            // From 1.22 a map of path to content address.
            let n = try r.readCount("path count")
            var paths: [StorePath] = []
            for _ in 0..<n {
                paths.append(try r.readStorePath("path", ctx))
                _ = try r.readString("content address")
            }
            return .querySubstitutablePathInfos(paths)
        case .buildPaths:
            let paths = try r.readList("derived paths") { (r: inout WireReader) throws(WireError) in try DerivedPath.read(from: &r, ctx) }
            return .buildPaths(paths, try BuildMode.read(from: &r))
        case .addToStore:
            let name = try r.readString("name")
            _ = try r.readString("content address method")
            let refs = Set(try r.readStorePaths("references", ctx))
            _ = try r.readBool("repair")
            return .addToStore(name: name, references: refs)
        case .addTextToStore:
            let name = try r.readString("name")
            _ = try r.readString("text")
            return .addTextToStore(name: name, references: Set(try r.readStorePaths("references", ctx)))
        case .importPaths: return .importPaths
        case .addIndirectRoot: return .addIndirectRoot(try r.readString("root path"))
        case .addPermRoot:
            let p = try r.readStorePath("path", ctx)
            return .addPermRoot(p, try r.readString("root path"))
        case .syncWithGC: return .syncWithGC
        case .findRoots: return .findRoots
        case .collectGarbage:
            let action = try r.readU64("GC action")
            _ = try r.readStorePaths("paths to delete", ctx)
            _ = try r.readBool("ignore liveness")
            _ = try r.readU64("max freed")
            for _ in 0..<3 { _ = try r.readU64("obsolete GC field") }
            return .collectGarbage(action: action)
        case .optimiseStore: return .optimiseStore
        case .verifyStore:
            let check = try r.readBool("check contents")
            return .verifyStore(checkContents: check, repair: try r.readBool("repair"))
        case .registerDrvOutput:
            // A realisation as JSON from 1.31; before, an output id and a path.
            _ = try r.readString("realisation")
            if !ctx.version.atLeast(31) { _ = try r.readString("output path") }
            return .registerDrvOutput
        case .queryRealisation: return .queryRealisation(try r.readString("output id"))
        case .addBuildLog: return .addBuildLog(try r.readString("derivation"))
        default:
            throw .unexpected("operation \(op.rawValue) is decoded elsewhere")
        }
    }
}
