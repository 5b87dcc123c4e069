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
/// untrusted client; AddSignatures, which Nix refuses to such a client, is refused.
public struct FleetStoreBackend: StoreServerBackend {
    public let view: FleetView
    /// Where added paths and signatures go; nil refuses them.
    public let writeStore: RemoteStore?

    public init(view: FleetView, writeStore: RemoteStore? = nil) {
        self.view = view
        self.writeStore = writeStore
    }

    public var streamedOps: Set<ServerOp> {
        writeStore == nil ? [] : [.addToStoreNar, .addMultipleToStore]
    }

    /// Forwards an added path's NAR (or several paths' payload) to the write store frame by
    /// frame. The client is told it is not trusted, so, as Nix's daemon does for such a
    /// client, signatures are always checked (by the write store) and nothing is repaired.
    public func answer(_ request: IncomingRequest, data: IncomingData, version: WorkerProtocolVersion) async throws -> ServerReply {
        guard let writeStore else { throw Self.notPrivileged("add paths") }
        let forward: @Sendable (DaemonConnection.FrameWriter) async throws -> Void = { w in
            while let chunk = try await data.next() { try await w.write(chunk) }
        }
        switch request {
        case var .worker(.addToStoreNarStreaming(info, _, _)):
            info.info.ultimate = false
            try await writeStore.addToStoreNar(info, repair: false, dontCheckSigs: false, body: forward)
        case .worker(.addMultipleToStore):
            try await writeStore.addMultipleToStore(repair: false, dontCheckSigs: false, body: forward)
        default:
            throw Self.notPrivileged("add paths")
        }
        forgetMissing()
        return .nothing
    }

    /// Nix asks whether a path is there before it copies it, so a written path is cached as
    /// missing: when the write store is also a fleet store, forget what is cached as missing
    /// so the path is served at once, not after `narinfo-cache-negative-ttl`.
    private func forgetMissing() {
        guard let writeStore, let cache = view.lookup.cache,
              view.lookup.stores.contains(where: { $0.uri.description == writeStore.uri.description }) else { return }
        try? cache.clear(negativeOnly: true)
    }

    /// Why the view refuses a write, in Nix's words for an untrusted client, with why.
    public static func notPrivileged(_ what: String) -> DaemonError {
        DaemonError(message: "you are not privileged to \(what)\n\nnix-bridge serves the fleet's trusted paths read-only")
    }

    private func notValid(_ path: StorePath) -> DaemonError {
        DaemonError(message: "path '\(view.storeDir.print(path))' is not valid")
    }

    public func answer(_ request: IncomingRequest, version: WorkerProtocolVersion) async throws -> ServerReply {
        switch request {
        case let .worker(w): return try await answer(w)
        case let .pathQuery(op, path): return try await answer(op, path)
        case .querySubstitutablePaths: return .paths([])
        case .querySubstitutablePathInfos: return .noSubstitutablePathInfos
        case let .buildPaths(paths, _):
            // Nothing to do for paths already there; building is for builders.
            let missing = try await missingOpaque(paths)
            if missing.count == 1 { throw noSubstituter(missing[0]) }
            if !missing.isEmpty {
                throw DaemonError(message: "build of " + missing.map { "'\(view.storeDir.print($0))'" }.joined(separator: ", ") + " failed")
            }
            return .number(1)
        case .addToStore, .addTextToStore, .importPaths: throw Self.notPrivileged("add paths")
        case .addIndirectRoot: throw Self.notPrivileged("create indirect roots")
        case .addPermRoot: throw Self.notPrivileged("create perm roots")
        case .syncWithGC: return .number(1)
        case .findRoots: return .noRoots
        case .collectGarbage: throw Self.notPrivileged("collect garbage")
        case .optimiseStore: throw Self.notPrivileged("optimise the store")
        case let .verifyStore(_, repair):
            throw repair ? DaemonError(message: "you are not privileged to repair paths") : Self.notPrivileged("verify the store")
        case .registerDrvOutput: throw Self.notPrivileged("register realisations")
        // No realisations of content-addressed derivations are known: an empty set.
        case .queryRealisation: return .strings([])
        case .addBuildLog: throw DaemonError(message: "you are not privileged to add logs")
        }
    }

    private func answer(_ w: WorkerRequest) async throws -> ServerReply {
        switch w {
        case let .isValidPath(p):
            return .bool(try await view.pathInfo(p) != nil)
        case let .queryValidPaths(paths, _):
            return .paths(try await view.validPaths(Array(paths)))
        case .queryAllValidPaths:
            return .paths(try await view.allPaths())
        case let .queryPathInfo(p):
            return .pathInfo(try await view.pathInfo(p).map(Self.wire))
        case let .queryPathFromHashPart(h):
            return .optionalPath(try await view.path(hashPart: h))
        case let .queryMissing(paths):
            return .missing(try await missing(paths))
        case .setOptions:
            return .nothing
        case .addSignatures:
            // Nix's daemon refuses this to a client outside 'trusted-users', and every client
            // is told it is not trusted: signatures reach the write store only with a path,
            // where that store checks them.
            throw DaemonError(message: "you are not privileged to add signatures")
        case .addToStoreNar, .addToStoreNarStreaming, .addMultipleToStore, .addMultipleToStoreStreaming:
            throw Self.notPrivileged("add paths")
        case .buildDerivation:
            throw Self.notPrivileged("build derivations")
        case let .buildPathsWithResults(paths, _):
            let missing = Set(try await missingOpaque(paths))
            return .buildResults(paths.map { p in
                guard case let .opaque(sp) = p, missing.contains(sp) else {
                    return KeyedBuildResult(path: p, result: BuildResult(status: .alreadyValid))
                }
                return KeyedBuildResult(path: p, result: BuildResult(status: .noSubstituters, errorMsg: noSubstituter(sp).message))
            })
        case .narFromPath:
            // StoreServer streams NARs through `narFromPath(_:into:)`.
            throw DaemonError(message: "NarFromPath is streamed, not answered")
        }
    }

    private func answer(_ op: ServerOp, _ path: StorePath) async throws -> ServerReply {
        switch op {
        case .hasSubstitutes: return .bool(false)
        case .queryReferrers, .queryValidDerivers, .queryDerivationOutputs: return .paths([])
        case .queryDerivationOutputNames: return .strings([])
        case .queryDerivationOutputMap: return .outputMap([:])
        case .queryDeriver:
            guard let info = try await view.pathInfo(path) else { throw notValid(path) }
            return .optionalPath(info.deriver)
        case .querySubstitutablePathInfo: return .noSubstitutablePathInfo
        case .ensurePath:
            guard try await view.pathInfo(path) != nil else {
                throw DaemonError(message: "path '\(view.storeDir.print(path))' does not exist and cannot be created")
            }
            return .number(1)
        // Nothing is ever collected here: a temporary root is a no-op.
        case .addTempRoot: return .number(1)
        default: throw DaemonError(message: "invalid operation \(op.rawValue)")
        }
    }

    public func narFromPath(_ path: StorePath, into send: @escaping @Sendable ([UInt8]) async throws -> Void) async throws {
        try await view.narFromPath(path, into: send)
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

    /// The wire form; `ultimate` is false: the view did not build anything.
    static func wire(_ info: PathInfo) -> UnkeyedValidPathInfo {
        UnkeyedValidPathInfo(deriver: info.deriver, narHash: info.narHash, references: info.references,
                             registrationTime: info.registrationTime, narSize: info.narSize, ultimate: false,
                             signatures: info.sigs, ca: info.ca)
    }
}
