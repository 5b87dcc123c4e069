import NixCore
import NixWire

extension StoreServer {
    /// Answers one request from `backend` (Nix's daemon `performOp`). `data` is the framed
    /// data of a request of `streamedOps` as it arrives. NarFromPath is streamed by the
    /// server loop, not answered here.
    static func perform(_ request: WorkerRequest, data: IncomingData?, on b: some StoreServerBackend) async throws -> WorkerResponse {
        switch request {
        case let .setOptions(s): try await b.setOptions(s); return .done
        case let .isValidPath(p): return .valid(try await b.isValidPath(p))
        case let .queryValidPaths(ps, substitute): return .validPaths(try await b.queryValidPaths(ps, substitute: substitute))
        case .queryAllValidPaths: return .validPaths(try await b.queryAllValidPaths())
        case let .queryPathInfo(p): return .pathInfo(try await b.queryPathInfo(p))
        case let .queryPathFromHashPart(h): return .storePath(try await b.queryPathFromHashPart(h))
        case .narFromPath: throw DaemonError(message: "NarFromPath is streamed, not answered")
        case let .queryMissing(ps): return .missing(try await b.queryMissing(ps))
        case let .queryDeriver(p): return .storePath(try await b.queryDeriver(p))
        case let .queryReferrers(p): return .validPaths(try await b.queryReferrers(p))
        case let .queryValidDerivers(p): return .validPaths(try await b.queryValidDerivers(p))
        case let .queryDerivationOutputs(p): return .validPaths(try await b.queryDerivationOutputs(p))
        case let .queryDerivationOutputNames(p): return .outputNames(try await b.queryDerivationOutputNames(p))
        case let .queryDerivationOutputMap(p): return .outputMap(try await b.queryDerivationOutputMap(p))
        case let .queryRealisation(id): return .realisations(try await b.queryRealisation(id))
        case let .hasSubstitutes(p): return .valid(try await b.hasSubstitutes(p))
        case let .querySubstitutablePaths(ps): return .validPaths(try await b.querySubstitutablePaths(ps))
        case let .querySubstitutablePathInfo(p): return .substitutablePathInfos(try await b.querySubstitutablePathInfos([p]))
        case let .querySubstitutablePathInfos(ps): return .substitutablePathInfos(try await b.querySubstitutablePathInfos(ps))
        case let .ensurePath(p): try await b.ensurePath(p); return .done
        case let .addTempRoot(p): try await b.addTempRoot(p); return .done
        case let .addIndirectRoot(link): try await b.addIndirectRoot(link); return .done
        case let .addPermRoot(p, link): return .rootLink(try await b.addPermRoot(p, link))
        case .syncWithGC: try await b.syncWithGC(); return .done
        case .findRoots: return .roots(try await b.findRoots())
        case let .collectGarbage(action, toDelete, ignoreLiveness, maxFreed):
            let r = try await b.collectGarbage(action: action, pathsToDelete: toDelete, ignoreLiveness: ignoreLiveness, maxFreed: maxFreed)
            return .collected(deleted: r.deleted, bytesFreed: r.bytesFreed)
        case .optimiseStore: try await b.optimiseStore(); return .done
        case let .verifyStore(check, repair): return .valid(try await b.verifyStore(checkContents: check, repair: repair))
        case let .buildPaths(ps, mode): try await b.buildPaths(ps, mode: mode); return .done
        case let .buildPathsWithResults(ps, mode): return .buildResults(try await b.buildPathsWithResults(ps, mode: mode))
        case let .buildDerivation(drvPath, drv, mode): return .buildResult(try await b.buildDerivation(drvPath, drv, mode: mode))
        case let .addToStoreNar(p, repair, dontCheckSigs):
            try await b.addToStoreNar(p.info, repair: repair, dontCheckSigs: dontCheckSigs, nar: data)
            return .done
        case let .addToStoreNarStreaming(info, repair, dontCheckSigs):
            try await b.addToStoreNar(info, repair: repair, dontCheckSigs: dontCheckSigs, nar: data)
            return .done
        case let .addMultipleToStore(_, repair, dontCheckSigs), let .addMultipleToStoreStreaming(repair, dontCheckSigs):
            try await b.addMultipleToStore(repair: repair, dontCheckSigs: dontCheckSigs, payload: data)
            return .done
        case let .addToStore(name, method, refs, repair):
            return .addedPath(try await b.addToStore(name: name, method: method, references: refs, repair: repair))
        case let .addTextToStore(name, text, refs):
            return .storePath(try await b.addTextToStore(name: name, text: text, references: refs))
        case .importPaths: return .validPaths(try await b.importPaths())
        case let .addSignatures(p, sigs): try await b.addSignatures(p, sigs); return .done
        case let .registerDrvOutput(r): try await b.registerDrvOutput(r); return .done
        case let .addBuildLog(drv): try await b.addBuildLog(drv); return .done
        }
    }
}
