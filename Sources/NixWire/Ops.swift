import NixCore

/// Operation codes, numbered as upstream's `WorkerProto::Op`.
public enum WorkerOp: UInt64, Sendable, Hashable {
    case isValidPath = 1
    case setOptions = 19
    case queryAllValidPaths = 23
    case queryPathInfo = 26
    case queryPathFromHashPart = 29
    case queryValidPaths = 31
    case buildDerivation = 36
    case addSignatures = 37
    case narFromPath = 38
    case addToStoreNar = 39
    case queryMissing = 40
    case addMultipleToStore = 44
    case buildPathsWithResults = 46
}

/// The client's settings as SetOptions sends them. Obsolete fields are sent as Nix sends them.
public struct ClientSettings: Sendable, Hashable {
    public var keepFailed = false
    public var keepGoing = false
    public var tryFallback = false
    /// Nix's verbosity (0 error ... 7 vomit); Nix sends lvlError.. by default.
    public var verbosity: UInt64 = 0
    public var maxBuildJobs: UInt64 = 1
    public var maxSilentTime: UInt64 = 0
    /// Obsolete; Nix sends true.
    public var useBuildHook = true
    /// Sent as a verbosity: lvlError (0) when true, lvlVomit (7) when false, as Nix does.
    public var verboseBuild = true
    /// Obsolete.
    public var logType: UInt64 = 0
    /// Obsolete.
    public var printBuildTrace: UInt64 = 0
    public var buildCores: UInt64 = 0
    public var useSubstitutes = true
    /// Other settings by name (1.12+).
    public var overrides: [String: String] = [:]

    public init() {}
}

/// QueryMissing's answer.
public struct MissingInfo: Sendable, Hashable {
    public var willBuild: Set<StorePath>
    public var willSubstitute: Set<StorePath>
    public var unknown: Set<StorePath>
    public var downloadSize: UInt64
    public var narSize: UInt64

    public init(willBuild: Set<StorePath> = [], willSubstitute: Set<StorePath> = [], unknown: Set<StorePath> = [],
                downloadSize: UInt64 = 0, narSize: UInt64 = 0) {
        self.willBuild = willBuild
        self.willSubstitute = willSubstitute
        self.unknown = unknown
        self.downloadSize = downloadSize
        self.narSize = narSize
    }
}

/// A path to add with its NAR (AddToStoreNar, AddMultipleToStore).
public struct PathWithNAR: Sendable, Hashable {
    public var info: ValidPathInfo
    public var nar: [UInt8]

    public init(info: ValidPathInfo, nar: [UInt8]) {
        self.info = info
        self.nar = nar
    }
}

/// A request from client to daemon.
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
    /// AddToStoreNar whose NAR the caller streams afterwards as frames (`FramedStream.frame`,
    /// then `FramedStream.end`), so a NAR of any size passes in bounded memory. 1.23+.
    case addToStoreNarStreaming(ValidPathInfo, repair: Bool, dontCheckSigs: Bool)
    case addMultipleToStore([PathWithNAR], repair: Bool, dontCheckSigs: Bool)
    /// AddMultipleToStore's arguments only: its framed payload (count, then each path's info
    /// and NAR) follows separately, in frames.
    case addMultipleToStoreStreaming(repair: Bool, dontCheckSigs: Bool)
    case buildDerivation(drvPath: StorePath, WireBasicDerivation, BuildMode)
    case buildPathsWithResults([DerivedPath], BuildMode)
    case addSignatures(StorePath, Set<String>)
    case queryMissing([DerivedPath])
    case setOptions(ClientSettings)

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
        case .buildPathsWithResults: return .buildPathsWithResults
        case .addSignatures: return .addSignatures
        case .queryMissing: return .queryMissing
        case .setOptions: return .setOptions
        }
    }

    /// The oldest protocol version that has this operation.
    public var minimumVersion: Int {
        switch self {
        case .addMultipleToStore, .addMultipleToStoreStreaming: return 32
        case .addToStoreNarStreaming: return 23
        case .buildPathsWithResults: return 34
        default: return 21
        }
    }
}

/// A daemon's reply to a request (after STDERR_LAST).
public enum WorkerResponse: Sendable, Hashable {
    /// IsValidPath.
    case valid(Bool)
    /// QueryValidPaths, QueryAllValidPaths.
    case validPaths(Set<StorePath>)
    /// QueryPathInfo: nil when the path is not valid.
    case pathInfo(UnkeyedValidPathInfo?)
    /// QueryPathFromHashPart.
    case storePath(StorePath?)
    /// NarFromPath: the NAR was delivered as `narData` events and has ended.
    case narEnd
    /// Operations whose reply is only STDERR_LAST (SetOptions, AddToStoreNar, AddMultipleToStore)
    /// or a constant 1 (AddSignatures).
    case done
    case buildResult(BuildResult)
    case buildResults([KeyedBuildResult])
    case missing(MissingInfo)
}
