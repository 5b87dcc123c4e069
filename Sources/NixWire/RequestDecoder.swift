import NixCore

extension WorkerRequest {
    /// Decodes one request (daemon side); nil, consuming nothing, when more input is needed.
    /// With `includeData`, AddToStoreNar and AddMultipleToStore come back whole (below 1.23
    /// AddToStoreNar cannot: its NAR is tunnelled via STDERR_READ). Without, they come back as
    /// their streaming forms (arguments only) and, as for AddToStore and AddBuildLog, the
    /// framed data stays in `r`, for the caller to stream with `FramedStreamDecoder` (and, for
    /// AddMultipleToStore, `decodeMultiplePayload`) or skip.
    public static func read(from r: inout WireReader, _ ctx: WireContext, includeData: Bool = true) throws(WireError) -> WorkerRequest? {
        try r.attempt(reading: "a request") { (r: inout WireReader) throws(WireError) -> WorkerRequest in
            let raw = try r.readU64("operation")
            guard let op = WorkerOp(rawValue: raw) else { throw .badNumber(reading: "operation", value: raw) }
            return try readArguments(op, from: &r, ctx, includeData: includeData)
        }
    }

    private static func readArguments(_ op: WorkerOp, from r: inout WireReader, _ ctx: WireContext,
                                      includeData: Bool) throws(WireError) -> WorkerRequest {
        let v = ctx.version
        func path() throws(WireError) -> StorePath { try r.readStorePath("path", ctx) }
        func paths(_ what: String) throws(WireError) -> Set<StorePath> { Set(try r.readStorePaths(what, ctx)) }
        func derivedPaths() throws(WireError) -> [DerivedPath] {
            try r.readValues("derived paths", ctx)
        }
        switch op {
        case .isValidPath: return .isValidPath(try path())
        case .queryPathInfo: return .queryPathInfo(try path())
        case .narFromPath: return .narFromPath(try path())
        case .queryValidPaths:
            let ps = try paths("paths")
            return .queryValidPaths(ps, substitute: v.atLeast(27) ? try r.readBool("substitute") : false)
        case .queryAllValidPaths: return .queryAllValidPaths
        case .queryPathFromHashPart: return .queryPathFromHashPart(try r.readString("hash part"))
        case .addToStoreNar:
            let info = try PathInfo.read(from: &r, ctx.addedPathInfo)
            let repair = try r.readBool("repair")
            let dontCheckSigs = try r.readBool("dontCheckSigs")
            guard includeData else { return .addToStoreNarStreaming(info, repair: repair, dontCheckSigs: dontCheckSigs) }
            guard v.atLeast(23) else {
                throw .notRepresentable("AddToStoreNar below protocol 1.23 tunnels its NAR through STDERR_READ")
            }
            guard let nar = try FramedStreamDecoder.decodeAll(from: &r) else { throw .truncated(reading: "NAR frames") }
            return .addToStoreNar(PathWithNAR(info: info, nar: nar), repair: repair, dontCheckSigs: dontCheckSigs)
        case .addMultipleToStore:
            let repair = try r.readBool("repair")
            let dontCheckSigs = try r.readBool("dontCheckSigs")
            guard includeData else { return .addMultipleToStoreStreaming(repair: repair, dontCheckSigs: dontCheckSigs) }
            guard let payload = try FramedStreamDecoder.decodeAll(from: &r) else { throw .truncated(reading: "frames") }
            return .addMultipleToStore(try decodeMultiplePayload(payload, ctx), repair: repair, dontCheckSigs: dontCheckSigs)
        case .buildDerivation:
            let drvPath = try r.readStorePath("derivation path", ctx)
            let drv = try BasicDerivation.read(from: &r, ctx, drvPath: drvPath)
            return .buildDerivation(drvPath: drvPath, drv, try BuildMode.read(from: &r))
        case .buildPaths:
            let ps = try derivedPaths()
            return .buildPaths(ps, try BuildMode.read(from: &r))
        case .buildPathsWithResults:
            let ps = try derivedPaths()
            return .buildPathsWithResults(ps, try BuildMode.read(from: &r))
        case .addSignatures:
            let p = try path()
            return .addSignatures(p, Set(try r.readStrings("signatures")))
        case .queryMissing: return .queryMissing(try derivedPaths())
        case .setOptions: return .setOptions(try ClientSettings.read(from: &r, ctx))
        case .hasSubstitutes: return .hasSubstitutes(try path())
        case .queryReferrers: return .queryReferrers(try path())
        case .ensurePath: return .ensurePath(try path())
        case .addTempRoot: return .addTempRoot(try path())
        case .queryDeriver: return .queryDeriver(try path())
        case .querySubstitutablePathInfo: return .querySubstitutablePathInfo(try path())
        case .queryDerivationOutputs: return .queryDerivationOutputs(try path())
        case .queryDerivationOutputNames: return .queryDerivationOutputNames(try path())
        case .queryValidDerivers: return .queryValidDerivers(try path())
        case .queryDerivationOutputMap: return .queryDerivationOutputMap(try path())
        case .querySubstitutablePaths: return .querySubstitutablePaths(try paths("paths"))
        case .querySubstitutablePathInfos:
            if !v.atLeast(22) { return .querySubstitutablePathInfos(try r.readStorePaths("paths", ctx)) }
            // From 1.22 a map of path to content address.
            let n = try r.readCount("path count")
            var ps: [StorePath] = []
            for _ in 0..<n {
                ps.append(try path())
                _ = try r.readString("content address")
            }
            return .querySubstitutablePathInfos(ps)
        case .addToStore:
            guard v.atLeast(25) else { throw .notRepresentable("AddToStore before worker protocol 1.25") }
            let name = try r.readString("name")
            let method = try r.readString("content address method")
            let refs = try paths("references")
            return .addToStore(name: name, method: method, references: refs, repair: try r.readBool("repair"))
        case .addTextToStore:
            let name = try r.readString("name")
            let text = try r.readString("text")
            return .addTextToStore(name: name, text: text, references: try paths("references"))
        case .importPaths: return .importPaths
        case .addIndirectRoot: return .addIndirectRoot(try r.readString("root path"))
        case .addPermRoot:
            let p = try path()
            return .addPermRoot(p, try r.readString("root path"))
        case .syncWithGC: return .syncWithGC
        case .findRoots: return .findRoots
        case .collectGarbage:
            let action = try r.readU64("GC action")
            let toDelete = try paths("paths to delete")
            let ignoreLiveness = try r.readBool("ignore liveness")
            let maxFreed = try r.readU64("max freed")
            for _ in 0..<3 { _ = try r.readU64("obsolete GC field") }
            return .collectGarbage(action: action, pathsToDelete: toDelete, ignoreLiveness: ignoreLiveness, maxFreed: maxFreed)
        case .optimiseStore: return .optimiseStore
        case .verifyStore:
            let check = try r.readBool("check contents")
            return .verifyStore(checkContents: check, repair: try r.readBool("repair"))
        case .registerDrvOutput:
            // A realisation as JSON from 1.31; before, its id and output path.
            if v.atLeast(31) { return .registerDrvOutput(try Realisation.read(from: &r)) }
            let id = try DrvOutput(parsing: try r.readString("derivation output id"))
            let out = try r.readStorePath("output path", ctx)
            return .registerDrvOutput(Realisation(id: id, outPath: out, signatures: nil, dependentRealisations: nil))
        case .queryRealisation: return .queryRealisation(try r.readString("output id"))
        case .addBuildLog: return .addBuildLog(try r.readString("derivation"))
        }
    }
}
