import NixCore
import NixStore
import NixTransport
import NixWire

/// The long-running service (`nix-bridge serve --socket`): every client of its socket is
/// served from one `FleetView`, so they share its builder connections (opened on first use,
/// kept open, re-opened when they break), its narinfo cache and what it remembers of the
/// fleet. A reload (SIGHUP) makes a new view from the configuration as it is now: new
/// clients get it, clients already connected keep theirs, and the old view's connections
/// close when its last client has gone.
public actor FleetService {
    /// What clients are served from: the view, and its stores to close when retired.
    public struct Generation: Sendable {
        public let view: FleetView
        public let writeStore: RemoteStore?
        /// A client that reads nothing of a NAR for this long is disconnected
        /// (`stalled-download-timeout`); nil waits forever.
        public let stalledClientTimeout: Duration?

        public init(view: FleetView, writeStore: RemoteStore?, stalledClientTimeout: Duration? = nil) {
            self.view = view
            self.writeStore = writeStore
            self.stalledClientTimeout = stalledClientTimeout
        }

        func close() async {
            for store in view.lookup.stores { await store.close() }
            await writeStore?.close()
        }
    }

    private let make: @Sendable () throws -> Generation
    private let version: String
    private let log: @Sendable (String) -> Void
    private var current: (id: Int, generation: Generation)
    /// Generations replaced by a reload, until their last client ends.
    private var retired: [Int: Generation] = [:]
    /// Connected clients: their streams (closed on shutdown) and the generation serving each.
    private var clients: [Int: (stream: any ByteStream, generation: Int)] = [:]
    private var nextClient = 0
    private var stopping = false
    public private(set) var clientsServed = 0

    /// - Parameters:
    ///   - make: reads the configuration and makes a generation (at start and on each reload).
    ///   - version: what the handshake announces as the daemon's Nix version.
    public init(version: String, log: @escaping @Sendable (String) -> Void = { _ in },
                make: @escaping @Sendable () throws -> Generation) throws {
        self.make = make
        self.version = version
        self.log = log
        current = (0, try make())
    }

    /// The view new clients are served from.
    public var view: FleetView { current.generation.view }

    /// Reads the configuration again (machines, keys, trust); on an error the service keeps
    /// the generation it has and the error is thrown.
    public func reload() async throws {
        let fresh = try make()
        let old = current
        current = (old.id + 1, fresh)
        if clients.values.contains(where: { $0.generation == old.id }) {
            retired[old.id] = old.generation
        } else {
            await old.generation.close()
        }
    }

    /// Accepts clients until the listener closes, each served on its own task.
    public func run(_ listener: UnixSocketListener) async {
        await withDiscardingTaskGroup { group in
            while true {
                let client: UnixSocketStream?
                do { client = try await listener.accept() } catch {
                    log("\(error)")
                    client = nil
                }
                guard let client else { break }
                group.addTask { await self.serve(client) }
            }
        }
    }

    /// Serves one client until it hangs up.
    public func serve(_ stream: any ByteStream) async {
        guard !stopping else { return await stream.close() }
        let id = nextClient
        nextClient += 1
        clientsServed += 1
        let (generationID, generation) = current
        clients[id] = (stream, generationID)
        let backend = FleetStoreBackend(view: generation.view, writeStore: generation.writeStore)
        let log = self.log
        let ending = await StoreServer.serve(stream, backend: backend, info: FleetStoreBackend.handshake(version: version),
                                             storeDir: generation.view.storeDir,
                                             stalledClientTimeout: generation.stalledClientTimeout) { log("client \(id): \($0)") }
        if case let .error(why) = ending, !stopping { log("client \(id): connection ended: \(why)") }
        clients[id] = nil
        if let old = retired[generationID], !clients.values.contains(where: { $0.generation == generationID }) {
            retired[generationID] = nil
            await old.close()
        }
    }

    /// Ends every client connection and closes every builder connection (local programs
    /// such as `nix-daemon --stdio` are stopped and reaped as their streams close).
    public func shutdown() async {
        stopping = true
        for (_, client) in clients { await client.stream.close() }
        for (_, g) in retired { await g.close() }
        retired = [:]
        await current.generation.close()
    }
}
