import NixCore

/// What a daemon sends after STDERR_LAST, by the shape of the reply (the caller picks the
/// one its operation wants, as upstream's `performOp` does).
public enum ServerReply: Sendable, Hashable {
    /// Nothing after STDERR_LAST (SetOptions, AddToStoreNar, AddMultipleToStore).
    case nothing
    /// A number: `1` for the operations that only say "done" (AddTempRoot, EnsurePath,
    /// SyncWithGC, AddSignatures, ...).
    case number(UInt64)
    /// IsValidPath, HasSubstitutes, VerifyStore.
    case bool(Bool)
    /// QueryValidPaths, QueryAllValidPaths, QuerySubstitutablePaths, QueryReferrers,
    /// QueryValidDerivers, QueryDerivationOutputs.
    case paths(Set<StorePath>)
    /// QueryPathInfo (from 1.17: a validity flag, then the info).
    case pathInfo(UnkeyedValidPathInfo?)
    /// QueryPathFromHashPart, QueryDeriver: a full path or "".
    case optionalPath(StorePath?)
    /// QueryDerivationOutputNames; QueryRealisation (a set of realisations as JSON).
    case strings([String])
    /// QueryDerivationOutputMap: output name to path (nil: not known).
    case outputMap([String: StorePath?])
    /// QuerySubstitutablePathInfo with nothing to substitute: `0`.
    case noSubstitutablePathInfo
    /// QuerySubstitutablePathInfos with nothing to substitute: an empty list.
    case noSubstitutablePathInfos
    /// FindRoots with no roots.
    case noRoots
    /// CollectGarbage that deleted nothing.
    case nothingCollected
    case missing(MissingInfo)
    case buildResult(BuildResult)
    case buildResults([KeyedBuildResult])

    public func write(to w: inout WireWriter, _ ctx: WireContext) throws(WireError) {
        switch self {
        case .nothing: break
        case let .number(n): w.writeU64(n)
        case let .bool(b): w.writeBool(b)
        case let .paths(p): w.writeStorePathSet(p, ctx)
        case let .pathInfo(info):
            if let info {
                w.writeBool(true)
                info.write(to: &w, ctx)
            } else {
                w.writeBool(false)
            }
        case let .optionalPath(p): w.writeOptionalStorePath(p, ctx)
        case let .strings(list): w.writeStrings(list)
        case let .outputMap(map):
            w.writeU64(UInt64(map.count))
            for (name, path) in map.sorted(by: { $0.key < $1.key }) {
                w.writeString(name)
                w.writeOptionalStorePath(path, ctx)
            }
        case .noSubstitutablePathInfo, .noSubstitutablePathInfos, .noRoots: w.writeU64(0)
        case .nothingCollected:
            w.writeU64(0)  // paths deleted
            w.writeU64(0)  // bytes freed
            w.writeU64(0)  // obsolete
        case let .missing(m):
            try WorkerResponse.missing(m).write(to: &w, for: .queryMissing, ctx)
        case let .buildResult(r):
            try WorkerResponse.buildResult(r).write(to: &w, for: .buildDerivation, ctx)
        case let .buildResults(list):
            try WorkerResponse.buildResults(list).write(to: &w, for: .buildPathsWithResults, ctx)
        }
    }
}
