import NixCore

/// A daemon's reply to a request (after STDERR_LAST), written by the daemon and read by the
/// client; its bytes depend on the operation (Nix's `performOp`).
public enum WorkerResponse: Sendable, Hashable {
    /// IsValidPath, HasSubstitutes; VerifyStore (whether errors were found).
    case valid(Bool)
    /// QueryValidPaths, QueryAllValidPaths, QuerySubstitutablePaths, QueryReferrers,
    /// QueryValidDerivers, QueryDerivationOutputs, ImportPaths.
    case validPaths(Set<StorePath>)
    /// QueryPathInfo: nil when the path is not valid.
    case pathInfo(PathInfo?)
    /// QueryPathFromHashPart, QueryDeriver, AddTextToStore.
    case storePath(StorePath?)
    /// NarFromPath: the NAR was delivered as `narData` events and has ended.
    case narEnd
    /// Operations that only say they are done: nothing after STDERR_LAST (SetOptions,
    /// AddToStoreNar, AddMultipleToStore, RegisterDrvOutput) or a constant 1 (the others).
    case done
    case buildResult(BuildResult)
    case buildResults([KeyedBuildResult])
    case missing(MissingInfo)
    /// QueryDerivationOutputNames.
    case outputNames(Set<String>)
    /// QueryDerivationOutputMap: output name to path (nil: not known).
    case outputMap([String: StorePath?])
    /// QuerySubstitutablePathInfo (at most one) and QuerySubstitutablePathInfos.
    case substitutablePathInfos([StorePath: SubstitutablePathInfo])
    /// FindRoots: link to the path it roots.
    case roots([String: StorePath])
    /// CollectGarbage.
    case collected(deleted: Set<String>, bytesFreed: UInt64)
    /// QueryRealisation.
    case realisations(Set<Realisation>)
    /// AddToStore: the added path.
    case addedPath(PathInfo)
    /// AddPermRoot: the root's link.
    case rootLink(String)

    /// Encodes the reply that follows STDERR_LAST (server side). `.narEnd` writes nothing:
    /// the server sends the NAR bytes themselves.
    public func write(to w: inout WireWriter, for op: WorkerOp, _ ctx: WireContext) throws(WireError) {
        switch (op, self) {
        case let (.isValidPath, .valid(b)), let (.hasSubstitutes, .valid(b)), let (.verifyStore, .valid(b)):
            w.writeBool(b)
        case let (.queryValidPaths, .validPaths(paths)), let (.queryAllValidPaths, .validPaths(paths)),
             let (.querySubstitutablePaths, .validPaths(paths)), let (.queryReferrers, .validPaths(paths)),
             let (.queryValidDerivers, .validPaths(paths)), let (.queryDerivationOutputs, .validPaths(paths)),
             let (.importPaths, .validPaths(paths)):
            w.writeStorePathSet(paths, ctx)
        case let (.queryPathInfo, .pathInfo(info)):
            if let info {
                if ctx.version.atLeast(17) { w.writeBool(true) }
                info.writeUnkeyed(to: &w, ctx)
            } else {
                guard ctx.version.atLeast(17) else { throw .notRepresentable("an invalid path needs an error before 1.17") }
                w.writeBool(false)
            }
        case let (.queryPathFromHashPart, .storePath(p)), let (.queryDeriver, .storePath(p)), let (.addTextToStore, .storePath(p)):
            w.writeOptionalStorePath(p, ctx)
        case (.narFromPath, .narEnd), (.setOptions, .done), (.addToStoreNar, .done), (.addMultipleToStore, .done),
             (.registerDrvOutput, .done):
            break
        case (.addSignatures, .done), (.ensurePath, .done), (.addTempRoot, .done), (.addIndirectRoot, .done),
             (.syncWithGC, .done), (.buildPaths, .done), (.optimiseStore, .done), (.addBuildLog, .done):
            w.writeU64(1)
        case let (.buildDerivation, .buildResult(res)):
            res.write(to: &w, ctx)
        case let (.buildPathsWithResults, .buildResults(list)):
            try w.writeValues(list, ctx)
        case let (.queryMissing, .missing(m)):
            w.writeStorePathSet(m.willBuild, ctx)
            w.writeStorePathSet(m.willSubstitute, ctx)
            w.writeStorePathSet(m.unknown, ctx)
            w.writeU64(m.downloadSize)
            w.writeU64(m.narSize)
        case let (.queryDerivationOutputNames, .outputNames(names)):
            w.writeStringSet(names)
        case let (.queryDerivationOutputMap, .outputMap(map)):
            w.writeU64(UInt64(map.count))
            for name in WireWriter.sortedByBytes(map.keys) {
                w.writeString(name)
                w.writeOptionalStorePath(map[name]!, ctx)
            }
        case let (.querySubstitutablePathInfo, .substitutablePathInfos(infos)):
            guard infos.count <= 1 else { throw .notRepresentable("QuerySubstitutablePathInfo answers one path") }
            w.writeBool(!infos.isEmpty)
            infos.first?.value.write(to: &w, ctx)
        case let (.querySubstitutablePathInfos, .substitutablePathInfos(infos)):
            w.writeU64(UInt64(infos.count))
            for (path, info) in infos.sorted(by: { $0.key < $1.key }) {
                w.writeStorePath(path, ctx)
                info.write(to: &w, ctx)
            }
        case let (.findRoots, .roots(roots)):
            w.writeU64(UInt64(roots.count))
            for link in WireWriter.sortedByBytes(roots.keys) {
                w.writeString(link)
                w.writeStorePath(roots[link]!, ctx)
            }
        case let (.collectGarbage, .collected(deleted, bytesFreed)):
            w.writeStringSet(deleted)
            w.writeU64(bytesFreed)
            w.writeU64(0)  // obsolete
        case let (.queryRealisation, .realisations(set)):
            // Before 1.31 only the output paths.
            if ctx.version.atLeast(31) {
                w.writeStringSet(set.map(\.json))
            } else {
                w.writeStorePathSet(Set(set.map(\.outPath)), ctx)
            }
        case let (.addToStore, .addedPath(info)):
            info.write(to: &w, ctx)
        case let (.addPermRoot, .rootLink(link)):
            w.writeString(link)
        default:
            throw .notRepresentable("reply \(self) does not answer \(op)")
        }
    }

    /// What a daemon sends once it is done: STDERR_LAST, then the reply.
    public func encodedReply(for op: WorkerOp, _ ctx: WireContext) throws(WireError) -> [UInt8] {
        var w = WireWriter()
        StderrMessage.last.write(to: &w, ctx)
        try write(to: &w, for: op, ctx)
        return w.bytes
    }
}
