import CoreMetrics
import Foundation
import Hummingbird
import Logging
import Prometheus

/// What `serve --http` counts, in Prometheus' text format at `/metrics` (or on a listener of
/// its own, `--metrics ADDR:PORT`): requests by kind and status, narinfo answer latency, bytes
/// of NAR sent, requests in flight, open connections, and by builder (`fleetObserver`) NAR
/// bytes, errors, timeouts, narinfo cache hits and misses and lookup latency. Recorded through swift-metrics with a Prometheus factory
/// of our own (no process-wide metrics system is bootstrapped).
public final class ServeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let inFlight: CoreMetrics.Gauge
    let narBytes: CoreMetrics.Counter
    let connections: CoreMetrics.Gauge
    private let inFlightCount = NIOLockedCount()
    let connectionCount = NIOLockedCount()
    /// Whether the cache's own listener answers `/metrics` (not when a `MetricsServer` does).
    public let onCacheListener: Bool

    public init(onCacheListener: Bool = true) {
        self.onCacheListener = onCacheListener
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        self.factory = factory
        inFlight = CoreMetrics.Gauge(label: "nix_bridge_http_requests_in_flight", factory: factory)
        narBytes = CoreMetrics.Counter(label: "nix_bridge_http_nar_bytes_total", factory: factory)
        connections = CoreMetrics.Gauge(label: "nix_bridge_http_connections_open", factory: factory)
        connections.record(0)
    }

    /// The kind of a request, by its path: `nix-cache-info`, `narinfo`, `nar`, `metrics`, `other`.
    static func kind(of path: String) -> String {
        if path == "/nix-cache-info" { return "nix-cache-info" }
        if path.hasSuffix(".narinfo") { return "narinfo" }
        if path.hasPrefix("/nar/") { return "nar" }
        if path == "/metrics" { return "metrics" }
        return "other"
    }

    func started() { inFlight.record(inFlightCount.add(1)) }

    func finished(kind: String, status: Int, seconds: Double, narBytes bytes: Int64?) {
        inFlight.record(inFlightCount.add(-1))
        CoreMetrics.Counter(label: "nix_bridge_http_requests_total", dimensions: [("kind", kind), ("status", String(status))],
                factory: factory).increment()
        if kind == "narinfo" {
            CoreMetrics.Timer(label: "nix_bridge_narinfo_seconds", dimensions: [("status", String(status))], factory: factory)
                .recordNanoseconds(Int64(seconds * 1e9))
        }
        if let bytes, bytes > 0 { narBytes.increment(by: bytes) }
    }

    /// A narinfo answered from the in-memory answers (`memory`) or by asking the fleet (`fleet`).
    func narInfoAnswered(from source: String) {
        CoreMetrics.Counter(label: "nix_bridge_http_narinfo_answers_total", dimensions: [("source", source)], factory: factory)
            .increment()
    }

    /// A NAR response cut short (the builder failed or the NAR did not match).
    func narCut() {
        CoreMetrics.Counter(label: "nix_bridge_http_nar_cut_total", factory: factory).increment()
    }

    /// The Prometheus text exposition of everything recorded so far.
    public func text() -> String { registry.emitToString() }

    /// The `/metrics` response.
    func response() -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text())))
    }
}

/// A counter shared by concurrent requests.
final class NIOLockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add(_ n: Int) -> Int { lock.withLock { value += n; return value } }
}

/// Counts every request the cache answers (when there are `metrics`: then it answers
/// `/metrics` itself) and logs it at level info, one line per request with its path and status.
struct MeasuredResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == BasicRequestContext {
    typealias Context = BasicRequestContext
    let inner: Inner
    let metrics: ServeMetrics?
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        guard let metrics else {
            let response = try await inner.respond(to: request, context: context)
            logger.info("\(request.method) \(request.uri.path) \(response.status.code)")
            return response
        }
        let path = request.uri.path
        let kind = ServeMetrics.kind(of: path)
        metrics.started()
        let start = ContinuousClock.now
        let response: Response
        do {
            response = kind == "metrics" && metrics.onCacheListener ? metrics.response()
                : try await inner.respond(to: request, context: context)
        } catch {
            metrics.finished(kind: kind, status: 500, seconds: Self.seconds(since: start), narBytes: nil)
            throw error
        }
        let status = Int(response.status.code)
        let bytes = kind == "nar" && request.method == .get ? response.headers[.contentLength].flatMap { Int64($0) } : nil
        metrics.finished(kind: kind, status: status, seconds: Self.seconds(since: start), narBytes: bytes)
        logger.info("\(request.method) \(path) \(status)", metadata: ["kind": "\(kind)"])
        return response
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// `--metrics ADDR:PORT`: `/metrics` alone on a listener of its own.
public struct MetricsServer: Sendable {
    public let metrics: ServeMetrics
    public let host: String
    public let port: Int
    public let logger: Logger
    /// Gets the bound port once it listens.
    public let onRunning: @Sendable (Int) async -> Void

    public init(metrics: ServeMetrics, host: String, port: Int, logger: Logger,
                onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.metrics = metrics
        self.host = host
        self.port = port
        self.logger = logger
        self.onRunning = onRunning
    }

    struct Only: HTTPResponder {
        typealias Context = BasicRequestContext
        let metrics: ServeMetrics
        func respond(to request: Request, context: Context) async throws -> Response {
            request.uri.path == "/metrics" ? metrics.response() : Response(status: .notFound)
        }
    }

    /// The application, for the cache's service group.
    func application() -> some ApplicationProtocol {
        let port = port, onRunning = onRunning
        return Application(responder: Only(metrics: metrics),
                           configuration: .init(address: .hostname(host, port: port)),
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
                           logger: logger)
    }
}
