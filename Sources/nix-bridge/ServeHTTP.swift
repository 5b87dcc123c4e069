import ArgumentParser
import Bridge
import BridgeHTTP
import Foundation
import Logging
import NixCore
import NixSigning

/// `nix-bridge serve --http ADDR:PORT`: the fleet as a Nix HTTP binary cache.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the fleet's trusted paths to Nix clients.",
        discussion: """
            With --http ADDR:PORT, serves an HTTP binary cache (as nix-serve and harmonia do) \
            on that address only: /nix-cache-info, /<hash>.narinfo and the NARs, streamed from \
            a builder that holds the path. Only paths signed by 'sigs-needed' keys of \
            'trusted-public-keys' (or content-addressed) are served; the others are 404. \
            Narinfos keep the builders' signatures and get one more from each key of \
            'secret-key-files'. Use it as 'substituters = http://ADDR:PORT'. Prints the URL \
            once listening (port 0 picks a free one); stops on SIGINT or SIGTERM.
            """
    )

    @Option(help: ArgumentHelp("Serve an HTTP binary cache on this address and port (e.g. 127.0.0.1:5000).",
                               valueName: "addr:port"))
    var http: String
    @Option(help: "'Priority' in nix-cache-info (lower is preferred).")
    var priority = 40
    @Option(help: "How many trusted signatures a path needs.")
    var sigsNeeded = 1
    @Option(help: "Seconds a served narinfo is kept in memory before the fleet is asked again.")
    var narinfoTtl = 60
    @OptionGroup var sources: LookupSourceOptions
    @OptionGroup var nix: NixOptions

    /// Synchronous, so that nothing has run on Swift's global executor yet when NIO's event
    /// loops take it over (see `HTTPBinaryCache.runTasksOnEventLoops`).
    func run() throws {
        _ = HTTPBinaryCache.runTasksOnEventLoops()
        final class Outcome: @unchecked Sendable { var error: (any Error)? }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let me = self
        Task {
            do { try await me.serve() } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
    }

    func serve() async throws {
        let (host, port) = try Self.parseAddress(http)
        let config = try nix.load()
        guard var lookup = try sources.lookup(config, sigsNeeded: sigsNeeded) else {
            throw CLIError.noStores
        }
        lookup.warnOnCacheWriteFailures { printError($0) }
        let fleet = FleetView(lookup: lookup, signingKeys: try config.signingKeys())
        var logger = Logger(label: "nix-bridge.http")
        logger.logLevel = .warning
        let cache = HTTPBinaryCache(
            fleet: fleet,
            configuration: .init(host: host, port: port, priority: priority, narInfoTTL: .seconds(narinfoTtl)),
            logger: logger)
        try await cache.run(handleSignals: true) { bound in
            let shown = host.contains(":") ? "[\(host)]" : host
            // Unbuffered: whoever started us waits for this line to know the port.
            FileHandle.standardOutput.write(Data("http://\(shown):\(bound)\n".utf8))
        }
        for s in lookup.stores { await s.close() }
    }

    /// `HOST:PORT` or `[V6]:PORT`.
    static func parseAddress(_ text: String) throws -> (String, Int) {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else { throw ValidationError("'--http' expects ADDR:PORT, got '\(text)'") }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ValidationError("'--http' expects ADDR:PORT, got '\(text)'")
            }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let p = Int(port), (0...65535).contains(p) else {
            throw ValidationError("'--http' expects ADDR:PORT with a port from 0 to 65535, got '\(text)'")
        }
        return (String(host), p)
    }
}
