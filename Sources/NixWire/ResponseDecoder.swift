import NixCore

extension WorkerResponse {
    /// Decodes the reply to `request` (client side); not for NarFromPath, whose reply is a raw NAR.
    public static func read(for request: WorkerRequest, from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> WorkerResponse {
        func paths(_ what: String) throws(WireError) -> Set<StorePath> { Set(try r.readStorePaths(what, ctx)) }
        switch request {
        case .isValidPath, .hasSubstitutes:
            return .valid(try r.readBool("\(request.op) reply"))
        case .verifyStore:
            return .valid(try r.readBool("VerifyStore reply"))
        case .queryValidPaths, .queryAllValidPaths:
            return .validPaths(try paths("valid paths"))
        case .querySubstitutablePaths, .queryReferrers, .queryValidDerivers, .queryDerivationOutputs, .importPaths:
            return .validPaths(try paths("\(request.op) reply"))
        case let .queryPathInfo(path):
            if ctx.version.atLeast(17) {
                let valid = try r.readBool("path info valid flag")
                if !valid { return .pathInfo(nil) }
            }
            return .pathInfo(try PathInfo.readUnkeyed(path: path, from: &r, ctx))
        case .queryPathFromHashPart, .queryDeriver, .addTextToStore:
            return .storePath(try r.readOptionalStorePath("store path", ctx))
        case .narFromPath:
            throw .unexpected("NarFromPath replies with a raw NAR, not a value")
        case .setOptions, .addToStoreNar, .addToStoreNarStreaming, .addMultipleToStore, .addMultipleToStoreStreaming,
             .registerDrvOutput:
            return .done
        case .addSignatures, .ensurePath, .addTempRoot, .addIndirectRoot, .syncWithGC, .buildPaths, .optimiseStore, .addBuildLog:
            _ = try r.readU64("\(request.op) reply")
            return .done
        case .buildDerivation:
            return .buildResult(try BuildResult.read(from: &r, ctx))
        case .buildPathsWithResults:
            return .buildResults(try r.readValues("build results", ctx))
        case .queryMissing:
            let b = try paths("willBuild")
            let s = try paths("willSubstitute")
            let u = try paths("unknown")
            return .missing(MissingInfo(willBuild: b, willSubstitute: s, unknown: u,
                                        downloadSize: try r.readU64("downloadSize"), narSize: try r.readU64("narSize")))
        case .queryDerivationOutputNames:
            return .outputNames(Set(try r.readStrings("output names")))
        case .queryDerivationOutputMap:
            let n = try r.readCount("output map")
            var map: [String: StorePath?] = [:]
            for _ in 0..<n {
                let name = try r.readString("output name")
                map[name] = try r.readOptionalStorePath("output path", ctx)
            }
            return .outputMap(map)
        case let .querySubstitutablePathInfo(path):
            guard try r.readBool("substitutable") else { return .substitutablePathInfos([:]) }
            return .substitutablePathInfos([path: try SubstitutablePathInfo.read(from: &r, ctx)])
        case .querySubstitutablePathInfos:
            let n = try r.readCount("substitutable path infos")
            var infos: [StorePath: SubstitutablePathInfo] = [:]
            for _ in 0..<n {
                let path = try r.readStorePath("path", ctx)
                infos[path] = try SubstitutablePathInfo.read(from: &r, ctx)
            }
            return .substitutablePathInfos(infos)
        case .findRoots:
            let n = try r.readCount("roots")
            var roots: [String: StorePath] = [:]
            for _ in 0..<n {
                let link = try r.readString("root link")
                roots[link] = try r.readStorePath("root", ctx)
            }
            return .roots(roots)
        case .collectGarbage:
            let deleted = Set(try r.readStrings("deleted paths"))
            let freed = try r.readU64("bytes freed")
            _ = try r.readU64("obsolete GC field")
            return .collected(deleted: deleted, bytesFreed: freed)
        case let .queryRealisation(idText):
            if ctx.version.atLeast(31) {
                var set = Set<Realisation>()
                for text in try r.readStrings("realisations") { set.insert(try Realisation(json: text)) }
                return .realisations(set)
            }
            let id = try DrvOutput(parsing: idText)
            return .realisations(Set(try paths("realisation output paths").map {
                Realisation(id: id, outPath: $0, signatures: nil, dependentRealisations: nil)
            }))
        case .addToStore:
            return .addedPath(try PathInfo.read(from: &r, ctx))
        case .addPermRoot:
            return .rootLink(try r.readString("root link"))
        }
    }
}
