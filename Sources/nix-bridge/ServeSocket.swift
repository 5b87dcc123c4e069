import Bridge
import Foundation
import NixTransport

/// The signals `nix-bridge serve` acts on, as a stream: SIGTERM and SIGINT stop it, SIGHUP
/// reloads. Their default actions are turned off first, so none of them kills the process.
final class ServeSignals: Sendable {
    let events: AsyncStream<Int32>
    private let feed: AsyncStream<Int32>.Continuation
    private nonisolated(unsafe) var sources: [any DispatchSourceSignal] = []

    init() {
        (events, feed) = AsyncStream<Int32>.makeStream()
        for number in [SIGTERM, SIGINT, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [feed] in feed.yield(number) }
            source.resume()
            sources.append(source)
        }
    }

    /// Stops the service as SIGTERM would.
    func stop() { feed.yield(SIGTERM) }
}

/// The worker protocol on a Unix socket (`serve --socket`): the listener and the service
/// behind it, made from the configuration again on each reload.
struct SocketService: Sendable {
    let service: FleetService
    let listener: UnixSocketListener
    let accepting: Task<Void, Never>
    let statistics: Task<Void, any Error>?

    static func start(path: String, mode: UInt32, first: FleetConfig, nix: NixOptions, sources: LookupSourceOptions,
                      sigsNeeded: Int, observer: FleetObserver? = nil) async throws -> SocketService {
        let loaded = FirstLoad(first)
        let service = try FleetService(version: StdioServer.versionText, log: { printError("nix-bridge: \($0)") }) {
            let config = try (loaded.take() ?? nix.load()).forServing()
            guard var lookup = try sources.lookup(config, sigsNeeded: sigsNeeded, cache: try sources.cache(config)) else { throw CLIError.noStores }
            lookup.observer = observer
            return FleetService.Generation(view: FleetView(lookup: lookup, signingKeys: try config.signingKeys()),
                                           writeStore: try config.writeStore(),
                                           stalledClientTimeout: config.settings.stalledTimeout)
        }
        let listener: UnixSocketListener
        if let fd = UnixSocketListener.systemdSocket() {
            listener = UnixSocketListener(inherited: fd, path: path)
        } else {
            // As nix-daemon makes its socket's directory; the socket's own mode says who may connect.
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            do { listener = try UnixSocketListener(path: path, mode: mode) } catch {
                await service.shutdown()
                throw error
            }
        }
        let accepting = Task { await service.run(listener) }
        var statistics: Task<Void, any Error>?
        if let file = ProcessInfo.processInfo.environment["NIX_BRIDGE_STATS"] {
            // Diagnostics for benchmarks, rewritten every 50 ms.
            statistics = Task.detached {
                while true {
                    let line = "\(await service.view.statistics); \(await service.clientsServed) clients\n"
                    try? Data(line.utf8).write(to: URL(fileURLWithPath: file))
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
        return SocketService(service: service, listener: listener, accepting: accepting, statistics: statistics)
    }

    /// SIGHUP: nix.conf, the machines file and the keys, read again.
    func reload() async {
        do {
            try await service.reload()
            printError("nix-bridge: reloaded the configuration")
        } catch {
            printError("nix-bridge: reload failed, keeping the configuration in use: \(error)")
        }
    }

    /// SIGTERM: no new client, the socket file removed, every connection closed.
    func stop() async {
        listener.close()
        await service.shutdown()
        await accepting.value
        statistics?.cancel()
    }
}

/// The configuration already loaded at start, used for the first generation only.
private final class FirstLoad: @unchecked Sendable {
    private var config: FleetConfig?
    private let lock = NSLock()
    init(_ config: FleetConfig) { self.config = config }
    func take() -> FleetConfig? { lock.withLock { defer { config = nil }; return config } }
}
