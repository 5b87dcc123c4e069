import NixCore

/// Operation codes, numbered as upstream's `WorkerProto::Op` (those of protocol 1.21–1.38).
public enum WorkerOp: UInt64, Sendable, Hashable, CaseIterable {
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

    /// Whether framed data follows the arguments at this version.
    public func hasFramedData(_ v: WorkerProtocolVersion) -> Bool {
        switch self {
        case .addMultipleToStore, .addBuildLog: return true
        case .addToStoreNar: return v.atLeast(23)
        case .addToStore: return v.atLeast(25)
        default: return false
        }
    }
}

/// A request, as a client writes it and a daemon reads it. Data that follows some requests
/// (framed NARs, dumps and logs) is part of the value only where the client holds it whole
/// (`addToStoreNar`, `addMultipleToStore`); the streaming forms carry the arguments alone.
public enum WorkerRequest: Sendable, Hashable {
    case isValidPath(StorePath)
    case queryValidPaths(Set<StorePath>, substitute: Bool)
    /// Every valid path of the store (no arguments).
    case queryAllValidPaths
    case queryPathInfo(StorePath)
    case queryPathFromHashPart(String)
    /// The reply is the path's NAR, unframed.
    case narFromPath(StorePath)
    case addToStoreNar(PathWithNAR, repair: Bool, dontCheckSigs: Bool)
    /// AddToStoreNar's arguments only: the NAR follows as frames (`FramedStream.frame`, then
    /// `FramedStream.end`), so a NAR of any size passes in bounded memory. 1.23+ for a client.
    case addToStoreNarStreaming(PathInfo, repair: Bool, dontCheckSigs: Bool)
    case addMultipleToStore([PathWithNAR], repair: Bool, dontCheckSigs: Bool)
    /// AddMultipleToStore's arguments only: its framed payload (count, then each path's info
    /// and NAR) follows separately, in frames.
    case addMultipleToStoreStreaming(repair: Bool, dontCheckSigs: Bool)
    case buildDerivation(drvPath: StorePath, BasicDerivation, BuildMode)
    case buildPaths([DerivedPath], BuildMode)
    case buildPathsWithResults([DerivedPath], BuildMode)
    case addSignatures(StorePath, Set<String>)
    case queryMissing([DerivedPath])
    case setOptions(ClientSettings)
    case hasSubstitutes(StorePath)
    case queryReferrers(StorePath)
    case ensurePath(StorePath)
    case addTempRoot(StorePath)
    case queryDeriver(StorePath)
    case querySubstitutablePathInfo(StorePath)
    case queryDerivationOutputs(StorePath)
    case queryDerivationOutputNames(StorePath)
    case queryValidDerivers(StorePath)
    case queryDerivationOutputMap(StorePath)
    case querySubstitutablePaths(Set<StorePath>)
    /// From 1.22 sent with each path's content address, which is not kept.
    case querySubstitutablePathInfos([StorePath])
    /// AddToStore from 1.25: its dump follows in frames.
    case addToStore(name: String, method: String, references: Set<StorePath>, repair: Bool)
    case addTextToStore(name: String, text: String, references: Set<StorePath>)
    /// ImportPaths' export stream is pulled with STDERR_READ, not part of the request.
    case importPaths
    case addIndirectRoot(String)
    case addPermRoot(StorePath, String)
    case syncWithGC
    case findRoots
    case collectGarbage(action: UInt64, pathsToDelete: Set<StorePath>, ignoreLiveness: Bool, maxFreed: UInt64)
    case optimiseStore
    case verifyStore(checkContents: Bool, repair: Bool)
    case registerDrvOutput(Realisation)
    /// A derivation output id, `sha256:<hash>!<output>`.
    case queryRealisation(String)
    /// AddBuildLog: the derivation's base name, as sent; the log follows in frames.
    case addBuildLog(String)

    public var op: WorkerOp {
        switch self {
        case .isValidPath: return .isValidPath
        case .queryValidPaths: return .queryValidPaths
        case .queryAllValidPaths: return .queryAllValidPaths
        case .queryPathInfo: return .queryPathInfo
        case .queryPathFromHashPart: return .queryPathFromHashPart
        case .narFromPath: return .narFromPath
        case .addToStoreNar, .addToStoreNarStreaming: return .addToStoreNar
        case .addMultipleToStore, .addMultipleToStoreStreaming: return .addMultipleToStore
        case .buildDerivation: return .buildDerivation
        case .buildPaths: return .buildPaths
        case .buildPathsWithResults: return .buildPathsWithResults
        case .addSignatures: return .addSignatures
        case .queryMissing: return .queryMissing
        case .setOptions: return .setOptions
        case .hasSubstitutes: return .hasSubstitutes
        case .queryReferrers: return .queryReferrers
        case .ensurePath: return .ensurePath
        case .addTempRoot: return .addTempRoot
        case .queryDeriver: return .queryDeriver
        case .querySubstitutablePathInfo: return .querySubstitutablePathInfo
        case .queryDerivationOutputs: return .queryDerivationOutputs
        case .queryDerivationOutputNames: return .queryDerivationOutputNames
        case .queryValidDerivers: return .queryValidDerivers
        case .queryDerivationOutputMap: return .queryDerivationOutputMap
        case .querySubstitutablePaths: return .querySubstitutablePaths
        case .querySubstitutablePathInfos: return .querySubstitutablePathInfos
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

    /// The oldest protocol version in which a client can send this request.
    public var minimumVersion: Int {
        switch self {
        case .addMultipleToStore, .addMultipleToStoreStreaming: return 32
        case .addToStoreNarStreaming: return 23
        case .addToStore: return 25
        case .buildPathsWithResults: return 34
        default: return 21
        }
    }
}
