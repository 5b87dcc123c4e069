import NixCore
import NixWire

/// What a worker-protocol server answers with (see `StoreServer`): one method per operation,
/// as Nix's `Store` interface behind its daemon. Every operation a backend does not implement
/// is refused as Nix's daemon refuses an untrusted client (`notPrivileged`), except SetOptions,
/// which is accepted and ignored. Throwing reports the error to the client (STDERR_ERROR, its
/// description as the message) and the connection goes on.
public protocol StoreServerBackend: Sendable {
    /// Nix's refusal: "you are not privileged to <what>".
    func notPrivileged(_ what: String) -> DaemonError

    /// Operations whose framed data (AddToStoreNar from 1.23, AddMultipleToStore) the backend
    /// reads as it arrives; the data of others is skipped and the method gets none. Default: none.
    var streamedOps: Set<WorkerOp> { get }

    func setOptions(_ settings: ClientSettings) async throws
    func isValidPath(_ path: StorePath) async throws -> Bool
    func queryValidPaths(_ paths: Set<StorePath>, substitute: Bool) async throws -> Set<StorePath>
    func queryAllValidPaths() async throws -> Set<StorePath>
    /// Nil when the path is not valid.
    func queryPathInfo(_ path: StorePath) async throws -> PathInfo?
    func queryPathFromHashPart(_ hashPart: String) async throws -> StorePath?
    /// Streams a path's NAR into `send`. Throwing before the first chunk reports the error
    /// and the connection goes on; after it, the connection ends (a NAR cannot be taken
    /// back: the client sees it cut short).
    func narFromPath(_ path: StorePath, into send: @escaping @Sendable ([UInt8]) async throws -> Void) async throws
    func queryMissing(_ paths: [DerivedPath]) async throws -> MissingInfo
    func queryDeriver(_ path: StorePath) async throws -> StorePath?
    func queryReferrers(_ path: StorePath) async throws -> Set<StorePath>
    func queryValidDerivers(_ path: StorePath) async throws -> Set<StorePath>
    func queryDerivationOutputs(_ path: StorePath) async throws -> Set<StorePath>
    func queryDerivationOutputNames(_ path: StorePath) async throws -> Set<String>
    func queryDerivationOutputMap(_ path: StorePath) async throws -> [String: StorePath?]
    func queryRealisation(_ id: String) async throws -> Set<Realisation>
    func hasSubstitutes(_ path: StorePath) async throws -> Bool
    func querySubstitutablePaths(_ paths: Set<StorePath>) async throws -> Set<StorePath>
    /// Also answers QuerySubstitutablePathInfo, for one path.
    func querySubstitutablePathInfos(_ paths: [StorePath]) async throws -> [StorePath: SubstitutablePathInfo]
    func ensurePath(_ path: StorePath) async throws
    func addTempRoot(_ path: StorePath) async throws
    func addIndirectRoot(_ link: String) async throws
    func addPermRoot(_ path: StorePath, _ link: String) async throws -> String
    func syncWithGC() async throws
    func findRoots() async throws -> [String: StorePath]
    func collectGarbage(action: UInt64, pathsToDelete: Set<StorePath>, ignoreLiveness: Bool,
                        maxFreed: UInt64) async throws -> (deleted: Set<String>, bytesFreed: UInt64)
    func optimiseStore() async throws
    /// Whether errors were found.
    func verifyStore(checkContents: Bool, repair: Bool) async throws -> Bool
    func buildPaths(_ paths: [DerivedPath], mode: BuildMode) async throws
    func buildPathsWithResults(_ paths: [DerivedPath], mode: BuildMode) async throws -> [KeyedBuildResult]
    func buildDerivation(_ drvPath: StorePath, _ drv: BasicDerivation, mode: BuildMode) async throws -> BuildResult
    /// `nar` is the NAR as it arrives when the operation is in `streamedOps`, else nil (skipped).
    /// The reply is sent once the client's data has ended, whenever this returns.
    func addToStoreNar(_ info: PathInfo, repair: Bool, dontCheckSigs: Bool, nar: IncomingData?) async throws
    /// `payload` as for `addToStoreNar`: the path count, then each path's info and NAR.
    func addMultipleToStore(repair: Bool, dontCheckSigs: Bool, payload: IncomingData?) async throws
    func addToStore(name: String, method: String, references: Set<StorePath>, repair: Bool) async throws -> PathInfo
    func addTextToStore(name: String, text: String, references: Set<StorePath>) async throws -> StorePath
    func importPaths() async throws -> Set<StorePath>
    func addSignatures(_ path: StorePath, _ signatures: Set<String>) async throws
    func registerDrvOutput(_ realisation: Realisation) async throws
    func addBuildLog(_ drv: String) async throws
}

extension StoreServerBackend {
    public func notPrivileged(_ what: String) -> DaemonError {
        DaemonError(message: "you are not privileged to \(what)")
    }

    public var streamedOps: Set<WorkerOp> { [] }

    public func setOptions(_ settings: ClientSettings) async throws {}
    public func isValidPath(_ path: StorePath) async throws -> Bool { throw notPrivileged("query paths") }
    public func queryValidPaths(_ paths: Set<StorePath>, substitute: Bool) async throws -> Set<StorePath> {
        throw notPrivileged("query paths")
    }
    public func queryAllValidPaths() async throws -> Set<StorePath> { throw notPrivileged("query paths") }
    public func queryPathInfo(_ path: StorePath) async throws -> PathInfo? { throw notPrivileged("query paths") }
    public func queryPathFromHashPart(_ hashPart: String) async throws -> StorePath? { throw notPrivileged("query paths") }
    public func narFromPath(_ path: StorePath, into send: @escaping @Sendable ([UInt8]) async throws -> Void) async throws {
        throw notPrivileged("read paths")
    }
    public func queryMissing(_ paths: [DerivedPath]) async throws -> MissingInfo { throw notPrivileged("query paths") }
    public func queryDeriver(_ path: StorePath) async throws -> StorePath? { throw notPrivileged("query paths") }
    public func queryReferrers(_ path: StorePath) async throws -> Set<StorePath> { throw notPrivileged("query paths") }
    public func queryValidDerivers(_ path: StorePath) async throws -> Set<StorePath> { throw notPrivileged("query paths") }
    public func queryDerivationOutputs(_ path: StorePath) async throws -> Set<StorePath> { throw notPrivileged("query paths") }
    public func queryDerivationOutputNames(_ path: StorePath) async throws -> Set<String> { throw notPrivileged("query paths") }
    public func queryDerivationOutputMap(_ path: StorePath) async throws -> [String: StorePath?] { throw notPrivileged("query paths") }
    public func queryRealisation(_ id: String) async throws -> Set<Realisation> { throw notPrivileged("query realisations") }
    public func hasSubstitutes(_ path: StorePath) async throws -> Bool { throw notPrivileged("query substitutes") }
    public func querySubstitutablePaths(_ paths: Set<StorePath>) async throws -> Set<StorePath> {
        throw notPrivileged("query substitutes")
    }
    public func querySubstitutablePathInfos(_ paths: [StorePath]) async throws -> [StorePath: SubstitutablePathInfo] {
        throw notPrivileged("query substitutes")
    }
    public func ensurePath(_ path: StorePath) async throws { throw notPrivileged("add paths") }
    public func addTempRoot(_ path: StorePath) async throws { throw notPrivileged("create temporary roots") }
    public func addIndirectRoot(_ link: String) async throws { throw notPrivileged("create indirect roots") }
    public func addPermRoot(_ path: StorePath, _ link: String) async throws -> String { throw notPrivileged("create perm roots") }
    public func syncWithGC() async throws { throw notPrivileged("collect garbage") }
    public func findRoots() async throws -> [String: StorePath] { throw notPrivileged("find roots") }
    public func collectGarbage(action: UInt64, pathsToDelete: Set<StorePath>, ignoreLiveness: Bool,
                               maxFreed: UInt64) async throws -> (deleted: Set<String>, bytesFreed: UInt64) {
        throw notPrivileged("collect garbage")
    }
    public func optimiseStore() async throws { throw notPrivileged("optimise the store") }
    public func verifyStore(checkContents: Bool, repair: Bool) async throws -> Bool {
        throw repair ? DaemonError(message: "you are not privileged to repair paths") : notPrivileged("verify the store")
    }
    public func buildPaths(_ paths: [DerivedPath], mode: BuildMode) async throws { throw notPrivileged("build derivations") }
    public func buildPathsWithResults(_ paths: [DerivedPath], mode: BuildMode) async throws -> [KeyedBuildResult] {
        throw notPrivileged("build derivations")
    }
    public func buildDerivation(_ drvPath: StorePath, _ drv: BasicDerivation, mode: BuildMode) async throws -> BuildResult {
        throw notPrivileged("build derivations")
    }
    public func addToStoreNar(_ info: PathInfo, repair: Bool, dontCheckSigs: Bool, nar: IncomingData?) async throws {
        throw notPrivileged("add paths")
    }
    public func addMultipleToStore(repair: Bool, dontCheckSigs: Bool, payload: IncomingData?) async throws {
        throw notPrivileged("add paths")
    }
    public func addToStore(name: String, method: String, references: Set<StorePath>, repair: Bool) async throws -> PathInfo {
        throw notPrivileged("add paths")
    }
    public func addTextToStore(name: String, text: String, references: Set<StorePath>) async throws -> StorePath {
        throw notPrivileged("add paths")
    }
    public func importPaths() async throws -> Set<StorePath> { throw notPrivileged("add paths") }
    public func addSignatures(_ path: StorePath, _ signatures: Set<String>) async throws {
        throw DaemonError(message: "you are not privileged to add signatures")
    }
    public func registerDrvOutput(_ realisation: Realisation) async throws { throw notPrivileged("register realisations") }
    public func addBuildLog(_ drv: String) async throws { throw DaemonError(message: "you are not privileged to add logs") }
}
