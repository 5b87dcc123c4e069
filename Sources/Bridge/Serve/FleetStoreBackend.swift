import NixCore
import NixStore
import NixWire

/// Answers worker-protocol requests from a `FleetView`: nix-bridge as an ssh-ng store
/// (`nix-bridge --stdio`) that holds the fleet's trusted paths and nothing else.
///
/// Queries are answered as Nix's daemon answers them for a store that has those paths and
/// no substituters (QuerySubstitutablePaths is empty, QueryMissing lists what the view
/// lacks as unknown). Every operation that would change a store is refused with Nix's
/// "you are not privileged to ..." wording: the view is read-only. With a `writeStore`
/// (`bridge-write-store`), added paths (AddToStoreNar, AddMultipleToStore) are forwarded to
/// it as they stream in, with their signatures checked there, as Nix's daemon does for an
/// untrusted client; AddSignatures, which Nix refuses to such a client, is refused (the
/// protocol's default answer).
public struct FleetStoreBackend: StoreServerBackend {
    public let view: FleetView
    /// Where added paths and signatures go; nil refuses them.
    public let writeStore: RemoteStore?

    public init(view: FleetView, writeStore: RemoteStore? = nil) {
        self.view = view
        self.writeStore = writeStore
    }

    public var streamedOps: Set<WorkerOp> {
        writeStore == nil ? [] : [.addToStoreNar, .addMultipleToStore]
    }

    /// Why the view refuses a write, in Nix's words for an untrusted client, with why.
    public func notPrivileged(_ what: String) -> DaemonError { Self.notPrivileged(what) }

    public static func notPrivileged(_ what: String) -> DaemonError {
        DaemonError(message: "you are not privileged to \(what)\n\nnix-bridge serves the fleet's trusted paths read-only")
    }

    private func notValid(_ path: StorePath) -> DaemonError {
        DaemonError(message: "path '\(view.storeDir.print(path))' is not valid")
    }

    // MARK: Queries

    public func isValidPath(_ path: StorePath) async throws -> Bool { try await view.pathInfo(path) != nil }

    public func queryValidPaths(_ paths: Set<StorePath>, substitute: Bool) async throws -> Set<StorePath> {
        try await view.validPaths(Array(paths))
    }

    public func queryAllValidPaths() async throws -> Set<StorePath> { try await view.allPaths() }

    /// `ultimate` is false: the view did not build anything.
    public func queryPathInfo(_ path: StorePath) async throws -> PathInfo? {
        guard var info = try await view.pathInfo(path) else { return nil }
        info.ultimate = false
        return info
    }

    public func queryPathFromHashPart(_ hashPart: String) async throws -> StorePath? { try await view.path(hashPart: hashPart) }

    public func narFromPath(_ path: StorePath, into send: @escaping @Sendable ([UInt8]) async throws -> Void) async throws {
        try await view.narFromPath(path, into: send)
    }

    public func queryDeriver(_ path: StorePath) async throws -> StorePath? {
        guard let info = try await view.pathInfo(path) else { throw notValid(path) }
        return info.deriver
    }

    // What the view does not know: no referrers, derivations, realisations or substitutes.
    public func queryReferrers(_ path: StorePath) async throws -> Set<StorePath> { [] }
    public func queryValidDerivers(_ path: StorePath) async throws -> Set<StorePath> { [] }
    public func queryDerivationOutputs(_ path: StorePath) async throws -> Set<StorePath> { [] }
    public func queryDerivationOutputNames(_ path: StorePath) async throws -> Set<String> { [] }
    public func queryDerivationOutputMap(_ path: StorePath) async throws -> [String: StorePath?] { [:] }
    public func queryRealisation(_ id: String) async throws -> Set<Realisation> { [] }
    public func hasSubstitutes(_ path: StorePath) async throws -> Bool { false }
    public func querySubstitutablePaths(_ paths: Set<StorePath>) async throws -> Set<StorePath> { [] }
    public func querySubstitutablePathInfos(_ paths: [StorePath]) async throws -> [StorePath: SubstitutablePathInfo] { [:] }

    public func queryMissing(_ paths: [DerivedPath]) async throws -> MissingInfo { try await missing(paths) }

    // MARK: Roots and builds

    public func ensurePath(_ path: StorePath) async throws {
        guard try await view.pathInfo(path) != nil else {
            throw DaemonError(message: "path '\(view.storeDir.print(path))' does not exist and cannot be created")
        }
    }

    // Nothing is ever collected here: a temporary root is a no-op.
    public func addTempRoot(_ path: StorePath) async throws {}
    public func syncWithGC() async throws {}
    public func findRoots() async throws -> [String: StorePath] { [:] }

    public func buildPaths(_ paths: [DerivedPath], mode: BuildMode) async throws {
        // Nothing to do for paths already there; building is for builders.
        let missing = try await missingOpaque(paths)
        if missing.count == 1 { throw noSubstituter(missing[0]) }
        if !missing.isEmpty {
            throw DaemonError(message: "build of " + missing.map { "'\(view.storeDir.print($0))'" }.joined(separator: ", ") + " failed")
        }
    }

    public func buildPathsWithResults(_ paths: [DerivedPath], mode: BuildMode) async throws -> [KeyedBuildResult] {
        let missing = Set(try await missingOpaque(paths))
        return paths.map { p in
            guard case let .opaque(sp) = p, missing.contains(sp) else {
                return KeyedBuildResult(path: p, result: BuildResult(status: .alreadyValid))
            }
            return KeyedBuildResult(path: p, result: BuildResult(status: .noSubstituters, errorMsg: noSubstituter(sp).message))
        }
    }

    // MARK: Writes

    /// Forwards an added path's NAR to the write store frame by frame. The client is told it
    /// is not trusted, so, as Nix's daemon does for such a client, signatures are always
    /// checked (by the write store) and nothing is repaired.
    public func addToStoreNar(_ info: PathInfo, repair: Bool, dontCheckSigs: Bool, nar: IncomingData?) async throws {
        guard let writeStore, let nar else { throw notPrivileged("add paths") }
        var info = info
        info.ultimate = false
        try await writeStore.addToStoreNar(info, repair: false, dontCheckSigs: false, body: Self.forward(nar))
        forgetMissing()
    }

    /// Forwards several paths' payload to the write store, as `addToStoreNar`.
    public func addMultipleToStore(repair: Bool, dontCheckSigs: Bool, payload: IncomingData?) async throws {
        guard let writeStore, let payload else { throw notPrivileged("add paths") }
        try await writeStore.addMultipleToStore(repair: false, dontCheckSigs: false, body: Self.forward(payload))
        forgetMissing()
    }

    private static func forward(_ data: IncomingData) -> @Sendable (DaemonConnection.FrameWriter) async throws -> Void {
        { w in while let chunk = try await data.next() { try await w.write(chunk) } }
    }

    /// Nix asks whether a path is there before it copies it, so a written path is cached as
    /// missing: when the write store is also a fleet store, forget what is cached as missing
    /// so the path is served at once, not after `narinfo-cache-negative-ttl`.
    private func forgetMissing() {
        guard let writeStore, let cache = view.lookup.cache,
              view.lookup.stores.contains(where: { $0.uri.description == writeStore.uri.description }) else { return }
        try? cache.clear(negativeOnly: true)
    }

    /// The plain paths the view lacks, sorted; derivation outputs are refused (building is
    /// for builders).
    private func missingOpaque(_ paths: [DerivedPath]) async throws -> [StorePath] {
        var opaque: [StorePath] = []
        for p in paths {
            guard case let .opaque(sp) = p else { throw Self.notPrivileged("build derivations") }
            opaque.append(sp)
        }
        let valid = try await view.validPaths(opaque)
        return Set(opaque).subtracting(valid).sorted()
    }

    /// Nix's words for a path neither valid nor substitutable.
    private func noSubstituter(_ path: StorePath) -> DaemonError {
        DaemonError(message: "path '\(view.storeDir.print(path))' is required, but there is no substituter that can build it")
    }

    /// QueryMissing for a store with no substituters and no builds: held paths need
    /// nothing; a derivation the view holds would have to be built; the rest is unknown.
    private func missing(_ paths: [DerivedPath]) async throws -> MissingInfo {
        let bases = paths.map { p -> StorePath in
            switch p {
            case let .opaque(sp): return sp
            case let .built(d, _): return d.baseStorePath
            }
        }
        let valid = try await view.validPaths(bases)
        var m = MissingInfo()
        for (p, base) in zip(paths, bases) {
            switch p {
            case .opaque: if !valid.contains(base) { m.unknown.insert(base) }
            case .built: if valid.contains(base) { m.willBuild.insert(base) } else { m.unknown.insert(base) }
            }
        }
        return m
    }
}
