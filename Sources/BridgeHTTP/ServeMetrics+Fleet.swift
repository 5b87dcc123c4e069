import Bridge
import CoreMetrics
import NIOCore

/// What the fleet did while serving, by builder, and the open client connections.
extension ServeMetrics {
    /// Records, by builder: NAR bytes received, failures and timeouts, narinfo cache hits
    /// and misses, and how long each builder took to answer a lookup. Set it as the
    /// `Lookup.observer` of the served `FleetView`.
    public var fleetObserver: FleetObserver {
        let factory = self.factory
        return FleetObserver(
            narBytes: { store, count in
                CoreMetrics.Counter(label: "nix_bridge_builder_nar_bytes_total", dimensions: [("builder", store)],
                                    factory: factory).increment(by: count)
            },
            storeFailed: { store, timedOut in
                CoreMetrics.Counter(label: "nix_bridge_builder_errors_total", dimensions: [("builder", store)],
                                    factory: factory).increment()
                if timedOut {
                    CoreMetrics.Counter(label: "nix_bridge_builder_timeouts_total", dimensions: [("builder", store)],
                                        factory: factory).increment()
                }
            },
            cacheAnswered: { store, hits, misses in
                for (result, n) in [("hit", hits), ("miss", misses)] where n > 0 {
                    CoreMetrics.Counter(label: "nix_bridge_narinfo_cache_paths_total",
                                        dimensions: [("builder", store), ("result", result)], factory: factory)
                        .increment(by: n)
                }
            },
            storeAnswered: { store, seconds in
                CoreMetrics.Timer(label: "nix_bridge_builder_lookup_seconds", dimensions: [("builder", store)], factory: factory)
                    .recordNanoseconds(Int64(seconds * 1e9))
            })
    }

    /// A handler for each client connection's pipeline: counted open from when it is added
    /// until the connection's pipeline is torn down.
    func connectionCounter() -> ConnectionCounter { ConnectionCounter(metrics: self) }

    func connectionOpened() { connections.record(connectionCount.add(1)) }

    func connectionClosed() { connections.record(connectionCount.add(-1)) }
}

/// Counts a connection open while it is in a pipeline (`nix_bridge_http_connections_open`).
final class ConnectionCounter: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    let metrics: ServeMetrics

    init(metrics: ServeMetrics) { self.metrics = metrics }

    func handlerAdded(context: ChannelHandlerContext) { metrics.connectionOpened() }

    func handlerRemoved(context: ChannelHandlerContext) { metrics.connectionClosed() }
}
