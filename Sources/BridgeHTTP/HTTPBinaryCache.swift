import Bridge
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import NixCore
import ServiceLifecycle

/// The fleet served as a Nix HTTP binary cache (what `nix-serve` and harmonia serve):
///
/// - `GET /nix-cache-info`: `StoreDir`, `WantMassQuery: 1`, `Priority`.
/// - `GET|HEAD /<hashpart>.narinfo`: the path's trusted info as narinfo text (its
///   signatures, plus ours when the fleet view signs), `Compression: none`, `URL:` naming the NAR.
/// - `GET|HEAD /nar/<narhash>.nar?hash=<hashpart>` (and nix-serve's
///   `/nar/<hashpart>-<narhash>.nar`): the NAR, streamed from a builder that holds it, with
///   `Content-Length` = NarSize, its SHA-256 checked on the way by the fleet view (the last
///   chunk is held back, so on a mismatch the response is cut short of its length).
///
/// Everything comes from a `FleetView`: a path no builder holds with trusted signatures is
/// 404, as Nix expects of a cache without it; a path the fleet could not answer for (a
/// builder that could not be asked, a NAR no builder could send) is 502 with the reason,
/// never 404 (Nix would remember the miss for `narinfo-cache-negative-ttl`).
public struct HTTPBinaryCache: Sendable {
    public struct Configuration: Sendable {
        /// The address to bind (only this one: `127.0.0.1` serves loopback only).
        public var host: String
        /// 0 picks a free port (reported to `run`'s `onRunning`).
        public var port: Int
        public var storeDir: StoreDirectory
        /// `Priority:` in nix-cache-info (lower is preferred; cache.nixos.org says 40).
        public var priority: Int
        /// How long a rendered narinfo is served without asking the fleet again (0: always ask).
        public var narInfoTTL: Duration
        /// A client that reads nothing of a response for this long is disconnected
        /// (`StalledClientHandler`); nil waits forever. `serve` uses `stalled-download-timeout`.
        public var stalledClientTimeout: Duration?

        public init(host: String, port: Int, storeDir: StoreDirectory = .default, priority: Int = 40,
                    narInfoTTL: Duration = .seconds(60), stalledClientTimeout: Duration? = nil) {
            self.host = host
            self.port = port
            self.storeDir = storeDir
            self.priority = priority
            self.narInfoTTL = narInfoTTL
            self.stalledClientTimeout = stalledClientTimeout
        }
    }

    public let fleet: FleetView
    public let configuration: Configuration
    public let logger: Logger
    /// Counted requests and `/metrics`, when given.
    public let metrics: ServeMetrics?
    let served: ServedNarInfos

    public init(fleet: FleetView, configuration: Configuration,
                logger: Logger = Logger(label: "nix-bridge.http"), metrics: ServeMetrics? = nil) {
        self.fleet = fleet
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.served = ServedNarInfos(ttl: configuration.narInfoTTL)
    }

    /// Serves until the task is cancelled (or, with `handleSignals`, until SIGINT/SIGTERM);
    /// either stops it gracefully: no new connection, requests under way finish.
    /// `onRunning` gets the bound port once the server listens.
    /// A `metricsServer` runs in the same service group.
    public func run(handleSignals: Bool = false, metricsServer: MetricsServer? = nil,
                    onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let port = configuration.port, metrics = self.metrics
        let handlers: @Sendable () -> [any RemovableChannelHandler]
        if let limit = configuration.stalledClientTimeout {
            let logger = self.logger, served = self.served, storeDir = configuration.storeDir
            handlers = {
                [StalledClientHandler(limit: limit, logger: logger) { target in
                    CacheURL.narRequest(target: target).flatMap { served.get($0.hashPart) }.map { storeDir.print($0.info.path) }
                }]
            }
        } else {
            handlers = { [] }
        }
        let app = Application(
            responder: MeasuredResponder(inner: responder(), metrics: metrics, logger: logger),
            server: .http1(configuration: .init(additionalChannelHandlers: handlers() + (metrics.map { [$0.connectionCounter()] } ?? []))),
            configuration: .init(address: .hostname(configuration.host, port: port)),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
        let alongside: [any Service] = metricsServer.map { [$0.application()] } ?? []
        let group = ServiceGroup(configuration: .init(services: [app] + alongside,
                                                      gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
                                                      logger: logger))
        // Not a child task: cancelling ours must reach the group as a graceful shutdown, not
        // as a cancellation (which drops connections and logs errors).
        let serving = Task { try await group.run() }
        try await withTaskCancellationHandler {
            try await serving.value
        } onCancel: {
            Task { await group.triggerGracefulShutdown() }
        }
    }

    /// What answers each request: a switch on the path (no router: the warm narinfo
    /// answer is a dictionary look-up, and routing would cost as much again).
    struct Responder: HTTPResponder {
        typealias Context = BasicRequestContext
        let cache: HTTPBinaryCache
        let cacheInfo: Response

        func respond(to request: Request, context: Context) async throws -> Response {
            let head: Bool
            switch request.method {
            case .get: head = false
            case .head: head = true
            default: return HTTPBinaryCache.methodNotAllowed
            }
            let path = request.uri.path
            let response: Response
            do {
                if path == "/nix-cache-info" {
                    response = cacheInfo
                } else if path.hasSuffix(".narinfo") {
                    response = try await cache.narInfo(String(path.dropFirst().dropLast(".narinfo".count)))
                } else if path.hasPrefix("/nar/") {
                    return try await cache.nar(file: String(path.dropFirst("/nar/".count)),
                                               query: request.uri.queryParameters.get("hash"), head: head)
                } else {
                    response = HTTPBinaryCache.notFound
                }
            } catch {
                return HTTPBinaryCache.failure(error)
            }
            return head ? response.createHeadResponse() : response
        }
    }

    /// Makes NIO's event-loop threads Swift's global executor, so request handlers run on the
    /// thread the request arrived on instead of hopping to the cooperative pool and back (the
    /// warm narinfo p50 halves: Docs/Benchmarks.md, "http"). For a process that only
    /// serves: it applies to every task of the process, and only works before the first task
    /// runs on the global executor. Returns false when it could not.
    public static func runTasksOnEventLoops() -> Bool {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    func responder() -> Responder {
        let info = "StoreDir: \(configuration.storeDir.path)\nWantMassQuery: 1\nPriority: \(configuration.priority)\n"
        return Responder(cache: self, cacheInfo: Self.text(info, type: "text/x-nix-cache-info"))
    }

    static let narInfoType = "text/x-nix-narinfo"

    /// The narinfo response for `<hashPart>`.
    func narInfo(_ hashPart: String) async throws -> Response {
        guard let entry = try await entry(hashPart: hashPart) else { return Self.notFound }
        return Self.response(entry.text, type: Self.narInfoType)
    }

    /// The text of a narinfo for a path served uncompressed, as Nix writes one
    /// (`FileHash`/`FileSize` are the NAR's own for `Compression: none`).
    static func narInfoText(_ info: PathInfo, storeDir: StoreDirectory) -> String {
        NarInfo(pathInfo: info, url: CacheURL.nar(for: info), compression: "none",
                fileHash: info.narHash, fileSize: info.narSize).render(in: storeDir)
    }

    /// The NAR response for `/nar/<file>?hash=<query>`.
    func nar(file: String, query: String?, head: Bool) async throws -> Response {
        guard let request = CacheURL.narRequest(file: file, hashQuery: query),
              let info = try await entry(hashPart: request.hashPart)?.info,
              info.narHash.algorithm == .sha256,
              info.narHash.string(.nix32, withAlgorithm: false) == request.narHash,
              let length = Int(exactly: info.narSize)
        else { return Self.notFound }
        var headers = HTTPFields()
        headers[.contentType] = "application/x-nix-archive"
        if head {
            headers[.contentLength] = String(length)
            return Response(status: .ok, headers: headers)
        }
        let fleet = self.fleet, logger = self.logger, metrics = self.metrics
        let printed = configuration.storeDir.print(info.path)
        // The transfer runs beside the response and waits for each chunk to be written:
        // bounded memory per client, and a slow client slows only its own builder transfer.
        let handoff = NARHandoff()
        // Whoever drops the last reference (the body once written, or a response never
        // sent) ends the transfer, so a client that went away never leaves one waiting.
        let transfer = NARTransfer(handoff: handoff, Task {
            do {
                try await fleet.narFromPath(info.path, expected: info) { chunk in try await handoff.give(chunk) }
                handoff.end(.success(()))
            } catch {
                handoff.end(.failure(error))
            }
        })
        // Nothing is promised before the first chunk: a NAR no builder could start sending
        // is answered with an error status, which Nix neither caches nor takes for "absent".
        let first: [UInt8]?
        do {
            first = try await withTaskCancellationHandler {
                try await handoff.take()
            } onCancel: {
                handoff.cancel()
            }
        } catch {
            logger.error("NAR of '\(printed)' not served: \(error)")
            return Self.failure(error)
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: length) { writer in
            let out = BodyWriterBox(writer)
            do {
                var next = first
                while let chunk = next {
                    try await out.write(chunk)
                    next = try await handoff.take()
                }
                try await out.finish()
                transfer.done()
            } catch {
                // Thrown on: the connection is closed short of Content-Length. A client
                // that went away stops the transfer.
                transfer.done()
                logger.error("NAR of '\(printed)' cut: \(error)")
                metrics?.narCut()
                throw error
            }
        })
    }

    /// The served info and narinfo text of the path with this hash part; nil when no builder
    /// holds it trusted. Answers are kept for `narInfoTTL`.
    func entry(hashPart: String) async throws -> ServedNarInfos.Entry? {
        guard CacheURL.isHashPart(hashPart) else { return nil }
        if let entry = served.get(hashPart) {
            metrics?.narInfoAnswered(from: "memory")
            return entry
        }
        metrics?.narInfoAnswered(from: "fleet")
        let info: PathInfo
        do {
            guard let path = try await fleet.path(hashPart: hashPart),
                  let found = try await fleet.pathInfo(path) else { return nil }
            info = found
        } catch {
            logger.error("looking up '\(hashPart)' in the fleet failed: \(error)")
            throw LookupFailure(hashPart: hashPart, error: "\(error)")
        }
        let text = ByteBuffer(string: Self.narInfoText(info, storeDir: configuration.storeDir))
        served.put(hashPart, info: info, text: text)
        return .init(info: info, text: text, expires: .now)
    }

    /// A fleet look-up that failed (answered 500: the path may exist, Nix must not take it as absent).
    struct LookupFailure: Error, CustomStringConvertible {
        var hashPart: String
        var error: String
        var description: String { "looking up '\(hashPart)' in the fleet failed: \(error)" }
    }

    /// The answer when the fleet could not answer: 502 when builders could not be asked or
    /// failed to send (nothing says the path is absent), 500 otherwise. The body says why.
    static func failure(_ error: any Error) -> Response {
        if case .notValid? = error as? FleetView.NARError { return notFound }
        let status: HTTPResponse.Status
        switch error {
        case is LookupFailure, is FleetView.QueryError, is FleetView.NARError: status = .badGateway
        default: status = .internalServerError
        }
        return Response(status: status, headers: [.contentType: "text/plain"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: "\(error)\n")))
    }

    static let methodNotAllowed = Response(status: .methodNotAllowed, headers: [.allow: "GET, HEAD"])

    static let notFound = Response(status: .notFound, headers: [.contentType: "text/plain"],
                                   body: ResponseBody(byteBuffer: ByteBuffer(string: "not found\n")))

    static func text(_ s: String, type: String) -> Response {
        response(ByteBuffer(string: s), type: type)
    }

    static func response(_ body: ByteBuffer, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type], body: ResponseBody(byteBuffer: body))
    }
}

/// The response's body writer, reachable from the fleet's chunk callback. Used by one task
/// at a time, in order (the chunks of one response).
final class BodyWriterBox: @unchecked Sendable {
    private var writer: any ResponseBodyWriter

    /// Largest piece handed to the connection at once: what a client must take within
    /// `stalledClientTimeout` to count as reading, and what one copy for NIO costs.
    static let piece = 64 << 10

    init(_ writer: any ResponseBodyWriter) { self.writer = writer }

    func write(_ chunk: [UInt8]) async throws {
        var start = 0
        while start < chunk.count {
            let end = min(chunk.count, start + Self.piece)
            try await writer.write(ByteBuffer(bytes: chunk[start..<end]))
            start = end
        }
    }

    func finish() async throws { try await writer.finish(nil) }
}

/// A NAR transfer for one response: ended (its handoff cancelled, its task too) once the
/// response is done with it, or dropped without having been sent.
final class NARTransfer: Sendable {
    let handoff: NARHandoff
    let task: Task<Void, Never>

    init(handoff: NARHandoff, _ task: Task<Void, Never>) {
        self.handoff = handoff
        self.task = task
    }

    func done() {
        handoff.cancel()
        task.cancel()
    }

    deinit { done() }
}
