import ArgumentParser
import Bridge
import BridgeHTTP
import Foundation
import Logging
import NixCore
import NixSigning

/// `nix-bridge serve [--socket PATH] [--http ADDR:PORT]`: the fleet as a long-running
/// service on a Unix socket (the worker protocol, as nix-daemon's socket) and/or a Nix
/// HTTP binary cache.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the fleet's trusted paths to Nix clients.",
        discussion: """
            With --socket PATH (or neither --socket nor --http: the 'bridge-socket' setting, \
            default /nix/var/nix/bridge-socket/socket), serves the worker protocol on a Unix \
            socket as nix-daemon does; 'nix-bridge --stdio' relays to it, so every client shares \
            one set of builder connections, one narinfo cache and one view of the fleet. The \
            socket's permissions are --socket-mode (default 0600: its owner only); under \
            systemd socket activation the socket systemd passes is used. SIGHUP reads nix.conf, \
            the machines and the keys again for new socket clients.
            With --http ADDR:PORT, serves an HTTP binary cache (as nix-serve and harmonia do) \
            on that address only: /nix-cache-info, /<hash>.narinfo and the NARs, streamed from \
            a builder that holds the path. Use it as 'substituters = http://ADDR:PORT'.
            Only paths signed by 'sigs-needed' keys of 'trusted-public-keys' (or \
            content-addressed) are served. Narinfos keep the builders' signatures and get one \
            more from each key of 'secret-key-files'. Prints unix://PATH and/or the URL once \
            listening (port 0 picks a free one); stops on SIGINT or SIGTERM, removing the socket.
            """
    )

    @Option(help: ArgumentHelp("Serve the worker protocol on this Unix socket.", valueName: "path"))
    var socket: String?
    @Option(help: ArgumentHelp("The socket's permission bits, in octal.", valueName: "mode"))
    var socketMode = "0600"
    @Option(help: ArgumentHelp("Serve an HTTP binary cache on this address and port (e.g. 127.0.0.1:5000).",
                               valueName: "addr:port"))
    var http: String?
    @Option(help: "'Priority' in nix-cache-info (lower is preferred).")
    var priority = 40
    @Option(help: "How many trusted signatures a path needs.")
    var sigsNeeded = 1
    @Option(help: "Seconds a served narinfo is kept in memory before the fleet is asked again.")
    var narinfoTtl = 60
    @Option(help: ArgumentHelp("Serve Prometheus metrics at /metrics on this address and port instead of on the cache's own (--http) listener.",
                               valueName: "addr:port"))
    var metrics: String?
    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Log more (repeatable), as Nix's -v: one line per request at the first level.")
    var verbosity: Int
    @Flag(help: "Log less, as Nix's --quiet: warnings and errors only.")
    var quiet = false
    @OptionGroup var sources: LookupSourceOptions
    @OptionGroup var nix: NixOptions

    func validate() throws {
        guard let mode = UInt32(socketMode, radix: 8), mode <= 0o777 else {
            throw ValidationError("'--socket-mode' expects octal permission bits such as 0660, got '\(socketMode)'")
        }
        _ = mode
        if let http { _ = try Self.parseAddress(http) }
        if let metrics { _ = try Self.parseAddress(metrics, option: "--metrics") }
    }

    /// Synchronous, so that nothing has run on Swift's global executor yet when NIO's event
    /// loops take it over (see `HTTPBinaryCache.runTasksOnEventLoops`).
    func run() throws {
        if http != nil { _ = HTTPBinaryCache.runTasksOnEventLoops() }
        final class Outcome: @unchecked Sendable { var error: (any Error)? }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let me = self
        let signals = ServeSignals()
        Task {
            do { try await me.serve(signals) } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
    }

    func serve(_ signals: ServeSignals) async throws {
        let config = try nix.load().forServing()
        let socketPath: String? = http == nil || socket != nil ? (socket ?? config.settings.bridgeSocket) : nil
        if socket == nil && http == nil && socketPath?.isEmpty != false {
            throw ValidationError("'bridge-socket' is empty: give --socket PATH or --http ADDR:PORT")
        }
        let metricsAddress = try metrics.map { try Self.parseAddress($0, option: "--metrics") }
        // With --http, the builders' side of serving is counted too (for every client).
        let measured = http.map { _ in ServeMetrics(onCacheListener: metricsAddress == nil) }
        let service: SocketService?
        if let socketPath {
            service = try await SocketService.start(path: socketPath, mode: UInt32(socketMode, radix: 8)!,
                                                    first: config, nix: nix, sources: sources, sigsNeeded: sigsNeeded,
                                                    observer: measured?.fleetObserver)
            FileHandle.standardOutput.write(Data("unix://\(socketPath)\n".utf8))
        } else {
            service = nil
        }
        var httpTask: Task<Void, any Error>?
        if let address = http, let measured {
            let (host, port) = try Self.parseAddress(address)
            let fleet: FleetView
            if let service {
                fleet = await service.service.view
            } else {
                guard var lookup = try sources.lookup(config, sigsNeeded: sigsNeeded, cache: try sources.cache(config)) else { throw CLIError.noStores }
                lookup.warnOnCacheWriteFailures { printError($0) }
                lookup.observer = measured.fleetObserver
                fleet = FleetView(lookup: lookup, signingKeys: try config.signingKeys())
            }
            var logger = Logger(label: "nix-bridge.http")
            logger.logLevel = Self.logLevel(verbosity: verbosity, quiet: quiet)
            let cache = HTTPBinaryCache(
                fleet: fleet,
                configuration: .init(host: host, port: port, priority: priority, narInfoTTL: .seconds(narinfoTtl),
                                     stalledClientTimeout: config.settings.stalledTimeout),
                logger: logger, metrics: measured)
            let metricsServer = metricsAddress.map { mHost, mPort in
                MetricsServer(metrics: measured, host: mHost, port: mPort, logger: logger) { bound in
                    FileHandle.standardOutput.write(Data("metrics: http://\(Self.shown(mHost)):\(bound)/metrics\n".utf8))
                }
            }
            let ownsFleet = service == nil
            httpTask = Task {
                // An HTTP server that cannot start (or stops) ends the service too.
                defer { signals.stop() }
                try await cache.run(metricsServer: metricsServer) { bound in
                    // Unbuffered: whoever started us waits for this line to know the port.
                    FileHandle.standardOutput.write(Data("http://\(Self.shown(host)):\(bound)\n".utf8))
                }
                if ownsFleet { for s in fleet.lookup.stores { await s.close() } }
            }
        }
        for await signal in signals.events {
            if signal == SIGHUP {
                if let service { await service.reload() }
                continue
            }
            break
        }
        httpTask?.cancel()
        await service?.stop()
        _ = try await httpTask?.value
    }

    static func shown(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// Nix's verbosity (notice by default; each -v one level more, --quiet one less) as
    /// swift-log's level.
    static func logLevel(verbosity: Int, quiet: Bool) -> Logger.Level {
        if quiet { return .warning }
        switch verbosity {
        case 0: return .notice
        case 1: return .info
        case 2, 3: return .debug
        default: return .trace
        }
    }

    /// `HOST:PORT` or `[V6]:PORT`.
    static func parseAddress(_ text: String, option: String = "--http") throws -> (String, Int) {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else { throw ValidationError("'\(option)' expects ADDR:PORT, got '\(text)'") }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ValidationError("'\(option)' expects ADDR:PORT, got '\(text)'")
            }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let p = Int(port), (0...65535).contains(p) else {
            throw ValidationError("'\(option)' expects ADDR:PORT with a port from 0 to 65535, got '\(text)'")
        }
        return (String(host), p)
    }
}
