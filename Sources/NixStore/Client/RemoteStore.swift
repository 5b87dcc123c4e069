import NixCore
import NixWire

/// A Nix store reached through the worker protocol (ssh-ng, the local daemon, a local
/// `nix-daemon --stdio`), with a small pool of pipelined connections: N queries cost about
/// one round trip, not N.
public actor RemoteStore {
    /// The store URI as given, for messages.
    public nonisolated let uri: StoreURI
    public nonisolated let storeDir: StoreDirectory
    private let connect: @Sendable () async throws(StoreError) -> DaemonConnection
    private let maxConnections: Int
    /// How many connections NAR transfers may open beyond `maxConnections`.
    private let maxNARConnections: Int
    private var connections: [DaemonConnection] = []
    /// Connections lent to NARs of their own, with how many.
    private var lent: [ObjectIdentifier: Int] = [:]
    private var opening: Task<DaemonConnection, any Error>?
    /// Connections being opened for NARs of their own.
    private var openingForNARs = 0
    /// Opens a connection of the other kind NARs take (`StoreOpener.narStreamOpener`).
    private let connectForNAR: (@Sendable () async throws(StoreError) -> DaemonConnection)?
    /// Connections `connectForNAR` opened, and which of them carry a NAR now.
    private var narConnections: [DaemonConnection] = []
    private var narBusy: Set<ObjectIdentifier> = []
    private var narOpening = 0
    /// Set when `connectForNAR` failed: from then on NARs take the pool's connections.
    public private(set) var narConnectFailure: StoreError?
    /// At most this many `connectForNAR` connections: they may share one multiplexed SSH
    /// connection, and sshd's MaxSessions (10 by default) bounds its sessions.
    static let maxConnectionsForNARs = 8

    /// - Parameters:
    ///   - connect: opens one new connection (transport + handshake).
    ///   - maxConnections: how many connections the pool may open.
    ///   - maxNARConnections: how many more connections NAR transfers may open, one each (kept
    ///     open once idle, for the next transfers).
    ///   - connectForNAR: opens a connection that carries NARs only, one at a time (another
    ///     SSH client); when it fails once, NARs take the pool's connections.
    public init(uri: StoreURI, storeDir: StoreDirectory = .default, maxConnections: Int = 1,
                maxNARConnections: Int = 16,
                connectForNAR: (@Sendable () async throws(StoreError) -> DaemonConnection)? = nil,
                connect: @escaping @Sendable () async throws(StoreError) -> DaemonConnection) {
        self.uri = uri
        self.storeDir = storeDir
        self.maxConnections = max(1, maxConnections)
        self.maxNARConnections = max(0, maxNARConnections)
        self.connectForNAR = connectForNAR
        self.connect = connect
    }

    /// An idle connection of `connectForNAR`'s, or a new one while there are fewer than
    /// `maxConnectionsForNARs`, marked busy; nil when there is none to be had (all busy, or
    /// opening failed): the NAR then takes the pool's connections.
    private func connectionForNAR() async -> DaemonConnection? {
        guard let connectForNAR, narConnectFailure == nil else { return nil }
        var live: [DaemonConnection] = []
        for c in narConnections where await !c.isBroken { live.append(c) }
        narConnections = live
        narBusy = narBusy.filter { id in live.contains { ObjectIdentifier($0) == id } }
        if let idle = live.first(where: { !narBusy.contains(ObjectIdentifier($0)) }) {
            narBusy.insert(ObjectIdentifier(idle))
            return idle
        }
        guard live.count + narOpening < Self.maxConnectionsForNARs else { return nil }
        narOpening += 1
        defer { narOpening -= 1 }
        do {
            let c = try await connectForNAR()
            narConnections.append(c)
            narBusy.insert(ObjectIdentifier(c))
            return c
        } catch {
            narConnectFailure = error
            return nil
        }
    }

    /// A connection to use: an idle one, else a new one while the pool has room, else the
    /// least loaded one (requests pipeline on it). A connection lent to a NAR of its own
    /// (`narFromPath(_:ownConnection:into:)`) is used only when nothing else is left: its
    /// receiver may be slow, and whatever is pipelined behind it would wait for it. With
    /// `forNAR`, such a NAR gets a connection of its own, opened beyond `maxConnections` (up
    /// to `maxNARConnections` more), so that one slow receiver holds back only its transfer.
    func connection(forNAR: Bool = false) async throws(StoreError) -> DaemonConnection {
        var live: [DaemonConnection] = []
        for c in connections where await !c.isBroken { live.append(c) }
        connections = live
        lent = lent.filter { id, _ in live.contains { ObjectIdentifier($0) == id } }
        var best: (DaemonConnection, Int)?
        for c in live where lent[ObjectIdentifier(c)] == nil {
            let load = await c.inFlight
            if load == 0 { return c }
            if best == nil || load < best!.1 { best = (c, load) }
        }
        let room = forNAR || best == nil ? maxConnections + maxNARConnections : maxConnections
        if forNAR, live.count + openingForNARs < room {
            // Not shared with other callers, as `opening` is: each NAR its own connection.
            openingForNARs += 1
            defer { openingForNARs -= 1 }
            do {
                let c = try await connect()
                connections.append(c)
                return c
            } catch {
                if let best { return best.0 }
                throw error
            }
        }
        if live.count < room {
            if let opening {
                do { return try await opening.value } catch { throw StoreError.wrap(error, peer: uri.description) }
            }
            let connect = self.connect
            let task = Task<DaemonConnection, any Error> { try await connect() }
            opening = task
            defer { opening = nil }
            do {
                let c = try await task.value
                connections.append(c)
                return c
            } catch {
                if let best { return best.0 }
                throw StoreError.wrap(error, peer: uri.description)
            }
        }
        if let best { return best.0 }
        // Every connection is lent to a NAR and the pool is full: queue behind the least busy.
        return live.min { lent[ObjectIdentifier($0), default: 0] < lent[ObjectIdentifier($1), default: 0] }!
    }

    /// After a NAR of its own: the connection is no longer lent. It stays open (idle, it is
    /// the first one the next NAR or request takes), so a long-running service logs in to a
    /// builder no more often than its peak number of transfers at once.
    private func giveBack(_ c: DaemonConnection) async {
        let id = ObjectIdentifier(c)
        if let n = lent[id], n > 1 { lent[id] = n - 1 } else { lent[id] = nil }
    }

    /// Opens (if needed) a connection and returns what its handshake said.
    public func handshake() async throws(StoreError) -> HandshakeResult {
        try await connection().handshake
    }

    /// Closes every connection; one still being opened is given up.
    public func close() async {
        opening?.cancel()
        for c in connections + narConnections { await c.close() }
        connections = []
        narConnections = []
    }

    func send(_ request: WorkerRequest, narSink: DaemonConnection.NARSink? = nil) async throws(StoreError) -> WorkerResponse {
        let c = try await connection()
        return try await c.request(request, narSink: narSink)
    }

    private func unexpected(_ op: WorkerOp) -> StoreError {
        .unexpectedResponse(peer: uri.description, op: "\(op)")
    }

    // MARK: Operations

    public func isValidPath(_ path: StorePath) async throws(StoreError) -> Bool {
        guard case let .valid(v) = try await send(.isValidPath(path)) else { throw unexpected(.isValidPath) }
        return v
    }

    /// The subset of `paths` that is valid in this store.
    public func queryValidPaths(_ paths: Set<StorePath>, substitute: Bool = false) async throws(StoreError) -> Set<StorePath> {
        guard case let .validPaths(v) = try await send(.queryValidPaths(paths, substitute: substitute)) else {
            throw unexpected(.queryValidPaths)
        }
        return v
    }

    /// Every valid path of the store (what `nix store sign --all` signs).
    public func queryAllValidPaths() async throws(StoreError) -> Set<StorePath> {
        guard case let .validPaths(v) = try await send(.queryAllValidPaths) else { throw unexpected(.queryAllValidPaths) }
        return v
    }

    /// The path's metadata, or nil when it is not valid here.
    public func queryPathInfo(_ path: StorePath) async throws(StoreError) -> PathInfo? {
        guard case let .pathInfo(info) = try await send(.queryPathInfo(path)) else { throw unexpected(.queryPathInfo) }
        return info
    }

    /// Many QueryPathInfo requests at once, pipelined over the pool. Paths that are not
    /// valid map to nil.
    public func queryPathInfos(_ paths: [StorePath]) async throws(StoreError) -> [StorePath: PathInfo?] {
        // Open the pool's connections up front so the requests spread over all of them.
        var conns: [DaemonConnection] = []
        for _ in 0..<maxConnections {
            let c = try await connection()
            if !conns.contains(where: { $0 === c }) { conns.append(c) }
        }
        let chosen = conns
        do {
            return try await withThrowingTaskGroup(of: (StorePath, PathInfo?).self) { group in
                for (i, p) in paths.enumerated() {
                    let c = chosen[i % chosen.count]
                    group.addTask {
                        guard case let .pathInfo(info) = try await c.request(.queryPathInfo(p)) else {
                            throw StoreError.unexpectedResponse(peer: c.peer, op: "QueryPathInfo")
                        }
                        return (p, info)
                    }
                }
                var out: [StorePath: PathInfo?] = [:]
                out.reserveCapacity(paths.count)
                for try await (p, info) in group { out[p] = info }
                return out
            }
        } catch {
            throw StoreError.wrap(error, peer: uri.description)
        }
    }

    public func queryPathFromHashPart(_ hashPart: String) async throws(StoreError) -> StorePath? {
        guard case let .storePath(p) = try await send(.queryPathFromHashPart(hashPart)) else {
            throw unexpected(.queryPathFromHashPart)
        }
        return p
    }

    /// Streams the path's NAR into `sink` as it arrives (bounded memory: the connection
    /// reads nothing more until the sink returns). With `ownConnection`, on a connection
    /// nothing else waits behind, for a sink that may be slow (a client being served);
    /// without, pipelined with the other requests (a sink that keeps up).
    public func narFromPath(_ path: StorePath, ownConnection: Bool = false,
                            into sink: @escaping DaemonConnection.NARSink) async throws(StoreError) {
        if let c = await connectionForNAR() {
            let response: WorkerResponse
            do { response = try await c.request(.narFromPath(path), narSink: sink) } catch {
                narBusy.remove(ObjectIdentifier(c))
                throw error
            }
            narBusy.remove(ObjectIdentifier(c))
            guard case .narEnd = response else { throw unexpected(.narFromPath) }
            return
        }
        guard ownConnection else {
            guard case .narEnd = try await send(.narFromPath(path), narSink: sink) else { throw unexpected(.narFromPath) }
            return
        }
        let c = try await connection(forNAR: true)
        lent[ObjectIdentifier(c), default: 0] += 1
        let response: WorkerResponse
        do {
            response = try await c.request(.narFromPath(path), narSink: sink)
        } catch {
            await giveBack(c)
            throw error
        }
        await giveBack(c)
        guard case .narEnd = response else { throw unexpected(.narFromPath) }
    }

    /// Adds signatures to a path (the daemon checks nothing: needs a trusted user).
    public func addSignatures(_ path: StorePath, _ signatures: Set<String>) async throws(StoreError) {
        _ = try await send(.addSignatures(path, signatures))
    }

    public func addToStoreNar(_ path: PathWithNAR, repair: Bool = false, dontCheckSigs: Bool = false) async throws(StoreError) {
        _ = try await send(.addToStoreNar(path, repair: repair, dontCheckSigs: dontCheckSigs))
    }

    /// Adds a path whose NAR `body` writes frame by frame, in bounded memory (see
    /// `DaemonConnection.addToStoreNar(_:repair:dontCheckSigs:body:)`). A throwing `body`
    /// closes that connection and registers nothing.
    public func addToStoreNar(_ info: PathInfo, repair: Bool = false, dontCheckSigs: Bool = false,
                              body: @Sendable (DaemonConnection.FrameWriter) async throws -> Void) async throws {
        let c = try await connection()
        try await c.addToStoreNar(info, repair: repair, dontCheckSigs: dontCheckSigs, body: body)
    }

    /// AddMultipleToStore whose framed payload `body` writes, in bounded memory (see
    /// `DaemonConnection.addMultipleToStore(repair:dontCheckSigs:body:)`). Needs 1.32.
    public func addMultipleToStore(repair: Bool = false, dontCheckSigs: Bool = false,
                                   body: @Sendable (DaemonConnection.FrameWriter) async throws -> Void) async throws {
        let c = try await connection()
        try await c.addMultipleToStore(repair: repair, dontCheckSigs: dontCheckSigs, body: body)
    }

    /// Adds several paths in one AddMultipleToStore request (protocol 1.32), in the order
    /// given: references must come before their referrers. Below 1.32, one AddToStoreNar
    /// each. A failure leaves the paths before the failing one added.
    public func addMultipleToStore(_ paths: [PathWithNAR], repair: Bool = false, dontCheckSigs: Bool = false) async throws(StoreError) {
        guard !paths.isEmpty else { return }
        let c = try await connection()
        if c.handshake.version.atLeast(32) {
            _ = try await c.request(.addMultipleToStore(paths, repair: repair, dontCheckSigs: dontCheckSigs))
        } else {
            for p in paths { _ = try await c.request(.addToStoreNar(p, repair: repair, dontCheckSigs: dontCheckSigs)) }
        }
    }

    public func setOptions(_ settings: ClientSettings) async throws(StoreError) {
        _ = try await send(.setOptions(settings))
    }

    public func queryMissing(_ paths: [DerivedPath]) async throws(StoreError) -> MissingInfo {
        guard case let .missing(m) = try await send(.queryMissing(paths)) else { throw unexpected(.queryMissing) }
        return m
    }

    public func buildDerivation(_ drvPath: StorePath, _ drv: BasicDerivation, mode: BuildMode = .normal) async throws(StoreError) -> BuildResult {
        guard case let .buildResult(r) = try await send(.buildDerivation(drvPath: drvPath, drv, mode)) else {
            throw unexpected(.buildDerivation)
        }
        return r
    }
}
