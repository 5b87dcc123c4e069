import NixCore

extension WorkerRequest {
    /// The path info and flags that precede AddToStoreNar's NAR.
    static func writeAddToStoreNarHeader(_ info: PathInfo, repair: Bool, dontCheckSigs: Bool,
                                         to w: inout WireWriter, _ ctx: WireContext) {
        info.write(to: &w, ctx.addedPathInfo)
        w.writeBool(repair)
        w.writeBool(dontCheckSigs)
    }

    /// Encodes the request, op code first. NAR data is framed from 1.23; for AddToStoreNar
    /// below 1.23 the NAR is not in these bytes: the daemon asks for it with STDERR_READ.
    public func write(to w: inout WireWriter, _ ctx: WireContext) throws(WireError) {
        let v = ctx.version
        guard v.atLeast(minimumVersion) else {
            throw .notRepresentable("\(op) needs worker protocol 1.\(minimumVersion), the connection has \(v)")
        }
        w.writeU64(op.rawValue)
        switch self {
        case let .isValidPath(p), let .queryPathInfo(p), let .narFromPath(p):
            w.writeStorePath(p, ctx)
        case let .queryValidPaths(paths, substitute):
            w.writeStorePathSet(paths, ctx)
            if v.atLeast(27) { w.writeBool(substitute) }
        case .queryAllValidPaths:
            break
        case let .queryPathFromHashPart(h):
            w.writeString(h)
        case let .addToStoreNar(p, repair, dontCheckSigs):
            WorkerRequest.writeAddToStoreNarHeader(p.info, repair: repair, dontCheckSigs: dontCheckSigs, to: &w, ctx)
            if v.atLeast(23) { FramedStream.encode(p.nar, into: &w) }
        case let .addToStoreNarStreaming(info, repair, dontCheckSigs):
            WorkerRequest.writeAddToStoreNarHeader(info, repair: repair, dontCheckSigs: dontCheckSigs, to: &w, ctx)
        case let .addMultipleToStore(paths, repair, dontCheckSigs):
            w.writeBool(repair)
            w.writeBool(dontCheckSigs)
            FramedStream.encode(WorkerRequest.multiplePayload(paths, ctx), into: &w)
        case let .addMultipleToStoreStreaming(repair, dontCheckSigs):
            w.writeBool(repair)
            w.writeBool(dontCheckSigs)
        case let .buildDerivation(drvPath, drv, mode):
            w.writeStorePath(drvPath, ctx)
            try drv.write(to: &w, ctx)
            mode.write(to: &w)
        case let .buildPaths(paths, mode), let .buildPathsWithResults(paths, mode):
            try w.writeValues(paths, ctx)
            mode.write(to: &w)
        case let .addSignatures(p, sigs):
            w.writeStorePath(p, ctx)
            w.writeStringSet(sigs)
        case let .queryMissing(paths):
            try w.writeValues(paths, ctx)
        case let .hasSubstitutes(p), let .queryReferrers(p), let .ensurePath(p), let .addTempRoot(p), let .queryDeriver(p),
             let .querySubstitutablePathInfo(p), let .queryDerivationOutputs(p), let .queryDerivationOutputNames(p),
             let .queryValidDerivers(p), let .queryDerivationOutputMap(p):
            w.writeStorePath(p, ctx)
        case let .querySubstitutablePaths(paths):
            w.writeStorePathSet(paths, ctx)
        case let .querySubstitutablePathInfos(paths):
            if v.atLeast(22) {
                // A map of path to content address; none is known here.
                let sorted = paths.sorted()
                w.writeU64(UInt64(sorted.count))
                for p in sorted {
                    w.writeStorePath(p, ctx)
                    w.writeString("")
                }
            } else {
                w.writeStorePathSet(paths, ctx)
            }
        case let .addToStore(name, method, references, repair):
            w.writeString(name)
            w.writeString(method)
            w.writeStorePathSet(references, ctx)
            w.writeBool(repair)
        case let .addTextToStore(name, text, references):
            w.writeString(name)
            w.writeString(text)
            w.writeStorePathSet(references, ctx)
        case .importPaths, .syncWithGC, .findRoots, .optimiseStore:
            break
        case let .addIndirectRoot(link):
            w.writeString(link)
        case let .addPermRoot(p, link):
            w.writeStorePath(p, ctx)
            w.writeString(link)
        case let .collectGarbage(action, pathsToDelete, ignoreLiveness, maxFreed):
            w.writeU64(action)
            w.writeStorePathSet(pathsToDelete, ctx)
            w.writeBool(ignoreLiveness)
            w.writeU64(maxFreed)
            for _ in 0..<3 { w.writeU64(0) }  // obsolete
        case let .verifyStore(checkContents, repair):
            w.writeBool(checkContents)
            w.writeBool(repair)
        case let .registerDrvOutput(r):
            // A realisation as JSON from 1.31; before, its id and output path.
            if v.atLeast(31) {
                r.write(to: &w)
            } else {
                w.writeString(r.id.description)
                w.writeStorePath(r.outPath, ctx)
            }
        case let .queryRealisation(id):
            w.writeString(id)
        case let .addBuildLog(drv):
            w.writeString(drv)
        case let .setOptions(s):
            s.write(to: &w, ctx)
        }
    }

    /// The framed payload of AddMultipleToStore: count, then each path's info followed by
    /// its NAR.
    static func multiplePayload(_ paths: [PathWithNAR], _ ctx: WireContext) -> [UInt8] {
        var inner = WireWriter(capacity: paths.reduce(64) { $0 + $1.nar.count + 512 })
        inner.writeU64(UInt64(paths.count))
        for p in paths {
            p.info.write(to: &inner, ctx.addedPathInfo)
            inner.writeRaw(p.nar)
        }
        return inner.bytes
    }

    public func encoded(_ ctx: WireContext) throws(WireError) -> [UInt8] {
        var w = WireWriter()
        try write(to: &w, ctx)
        return w.bytes
    }

    /// Parses the de-framed data of AddMultipleToStore: a count, then each path's info in the
    /// added-path form followed by `narSize` bytes of NAR.
    public static func decodeMultiplePayload(_ payload: [UInt8], _ ctx: WireContext) throws(WireError) -> [PathWithNAR] {
        var inner = WireReader(payload, limits: ctx.limits)
        let n = try inner.readCount("path count")
        var out: [PathWithNAR] = []
        for _ in 0..<n {
            let info = try PathInfo.read(from: &inner, ctx.addedPathInfo)
            guard info.narSize <= UInt64(inner.unreadCount) else {
                throw .badValue(reading: "AddMultipleToStore NAR", detail: "narSize \(info.narSize) exceeds the \(inner.unreadCount) bytes sent")
            }
            out.append(PathWithNAR(info: info, nar: Array(inner.takeAvailable(max: Int(info.narSize)))))
        }
        guard inner.isAtEnd else { throw .unexpected("\(inner.unreadCount) stray bytes after AddMultipleToStore paths") }
        return out
    }
}
