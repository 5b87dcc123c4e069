import ArgumentParser
import Bridge
import BridgeHTTP
import Foundation
import Logging
import NixCore
import NixSigning
import NixStore
import PeerFixtures

/// `nix-bridge-bench http`: warm narinfo requests to `nix-bridge serve --http` (our
/// `HTTPBinaryCache` over a 2-builder loopback fleet, every narinfo already looked up) beside
/// nginx serving the same paths' narinfo files statically from a `file://` cache made by `nix
/// copy`. Same run, same client: wrk (keep-alive) cycling through every narinfo URL, once
/// with many connections (requests per second), once with one (latency: p50, p99).
///
///     apt-get install -y nginx wrk
///     swift build -c release --product nix-bridge-bench
///     .build/release/nix-bridge-bench http
struct HTTPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Warm narinfo requests/s and latency of serve --http vs nginx serving a nix copy'd file:// cache."
    )

    @Option(help: "Paths in all (half on each of the 2 builders).") var paths = 2_000
    @Option(help: "Seconds of each wrk run.") var seconds = 10
    @Option(help: "wrk connections for the rate runs.") var connections = 50
    @Option(help: "wrk threads for the rate runs.") var threads = 2
    @Option(help: "Runs of each measurement (the median is reported).") var runs = 3

    @Flag(inversion: .prefixedNo, help: """
        Run Swift concurrency on NIO's event loop threads, as nix-bridge serve does \
        (--no-nio-executor: on Swift's cooperative pool, each request hopping between the two).
        """)
    var nioExecutor = true

    func run() throws {
        if nioExecutor {
            guard HTTPBinaryCache.runTasksOnEventLoops() else {
                throw BenchFailure("could not make NIO's event loops the global executor")
            }
        } else {
            print("http: --no-nio-executor: handlers run on Swift's cooperative pool (not what serve does)")
        }
        let me = self
        try Bench.block { try await me.measure() }
    }

    func measure() async throws {
        guard let wrk = PeerFixtures.which("wrk") else {
            throw BenchFailure("wrk is missing: 'apt-get install -y wrk' (the load generator for both servers)")
        }
        let nginx = PeerFixtures.which("nginx") ?? ["/usr/sbin/nginx", "/sbin/nginx"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        if nginx == nil {
            print("http: nginx is MISSING ('apt-get install -y nginx'): only nix-bridge is measured, no ratio")
        }
        let bench = try BenchFleet(builders: 2)
        defer { bench.stop() }
        let setup = ContinuousClock.now
        let all = try (1...2).flatMap { i in
            let fixture = try StoreFixture.make(count: i == 1 ? paths / 2 : paths - paths / 2, seed: UInt64(600 + i),
                                                namePrefix: "http\(i)")
            try bench.fill(builder: i, with: fixture)
            return fixture.paths
        }
        print("http: \(all.count) paths, half signed on each of 2 builders (setup \(Bench.format(Bench.seconds(ContinuousClock.now - setup))))")
        let urls = bench.work.appendingPathComponent("urls")
        try all.map { "/\($0.hashPart).narinfo\n" }.joined().write(to: urls, atomically: true, encoding: .utf8)
        let script = bench.work.appendingPathComponent("cycle.lua")
        try Self.wrkScript(urls: urls.path).write(to: script, atomically: true, encoding: .utf8)

        // Ours, in this process: a FleetView over both builders, narinfos kept an hour.
        let stores = try bench.fleet.builders.map { try bench.opener.store(try StoreURI(parsing: $0.storeURI)) }
        let ours = try SecretKey.generate(name: "bridge-bench-1")
        let view = FleetView(lookup: Lookup(stores: stores, trustedKeys: try TrustedKeys(parsing: bench.trustedKeys)),
                             signingKeys: [ours])
        var logger = Logger(label: "nix-bridge.http.bench")
        logger.logLevel = .warning
        let cache = HTTPBinaryCache(fleet: view, configuration: .init(host: "127.0.0.1", port: 0, narInfoTTL: .seconds(3600)),
                                    logger: logger)
        let (ports, feed) = AsyncStream<Int>.makeStream()
        let server = Task { try await cache.run { feed.yield($0) } }
        defer { server.cancel() }
        var port = 0
        for await p in ports { port = p; break }
        guard port != 0 else { throw BenchFailure("the HTTP cache did not start") }
        let oursURL = "http://127.0.0.1:\(port)"
        let warmup = ContinuousClock.now
        try await Self.offPool { try Self.fetchAll(oursURL, all, work: bench.work) }
        print("http: ours at \(oursURL), every narinfo looked up once (cold, \(Bench.format(Bench.seconds(ContinuousClock.now - warmup))))")

        // nginx over the narinfo files `nix copy` writes for the same paths.
        var nginxProcess: SpawnedProcess?
        var nginxURL: String?
        if let nginx {
            let dir = bench.work.appendingPathComponent("file-cache").path
            for i in 1...2 {
                let mine = i == 1 ? all.prefix(paths / 2) : all.dropFirst(paths / 2)
                _ = try bench.timeNix(["nix", "copy", "--no-check-sigs", "--from", "local?root=\(bench.fleet.builders[i - 1].storeRoot)",
                                       "--to", "file://\(dir)?compression=none"] + mine.map { StoreDirectory.default.print($0) },
                                      timeout: 600)
            }
            let nginxPort = try Fleet.freeLoopbackPort()
            let conf = bench.work.appendingPathComponent("nginx.conf").path
            try Self.nginxConf(root: dir, port: nginxPort, work: bench.work.path).write(toFile: conf, atomically: true, encoding: .utf8)
            nginxProcess = try SpawnedProcess([nginx, "-c", conf, "-p", bench.work.path],
                                              logFile: bench.work.appendingPathComponent("nginx.log").path)
            guard Fleet.waitListening(port: nginxPort, timeout: 10, while: { nginxProcess?.isRunning ?? false }) else {
                throw BenchFailure("nginx did not start: \((try? String(contentsOfFile: bench.work.path + "/nginx.log", encoding: .utf8)) ?? "")")
            }
            nginxURL = "http://127.0.0.1:\(nginxPort)"
            let url = nginxURL!
            try await Self.offPool { try Self.fetchAll(url, all, work: bench.work) }
        }
        defer { nginxProcess?.stop(signal: SIGQUIT) }

        // Alternate the two servers run by run, so a change in the machine's load hits both.
        var oursRuns: [WrkResult] = [], nginxRuns: [WrkResult] = []
        var oursLatency: [WrkResult] = [], nginxLatency: [WrkResult] = []
        for _ in 0..<runs {
            oursRuns.append(try await wrkRun(wrk, oursURL, script: script.path, threads: threads, connections: connections))
            if let nginxURL { nginxRuns.append(try await wrkRun(wrk, nginxURL, script: script.path, threads: threads, connections: connections)) }
            oursLatency.append(try await wrkRun(wrk, oursURL, script: script.path, threads: 1, connections: 1))
            if let nginxURL { nginxLatency.append(try await wrkRun(wrk, nginxURL, script: script.path, threads: 1, connections: 1)) }
        }
        for (name, r) in [("ours", oursRuns), ("nginx", nginxRuns), ("ours, 1 connection", oursLatency),
                          ("nginx, 1 connection", nginxLatency)] where !r.isEmpty {
            print("http: \(name): " + r.map { String(format: "%.0f req/s p50 %@ p99 %@", $0.rate, Self.us($0.p50), Self.us($0.p99)) }
                .joined(separator: "; "))
        }
        print("http: load average \(Self.loadAverage())")
        let o = WrkResult.median(oursRuns), ol = WrkResult.median(oursLatency)
        var rows: [BenchRow] = []
        if !nginxRuns.isEmpty {
            let n = WrkResult.median(nginxRuns), nl = WrkResult.median(nginxLatency)
            let ratio = o.rate / n.rate
            rows.append(BenchRow(job: "warm narinfo, \(connections) connections, req/s", ours: String(format: "%.0f", o.rate),
                                 nix: String(format: "%.0f (nginx)", n.rate), ratio: String(format: "%.2fx", ratio),
                                 target: "≥0.5x nginx", met: ratio >= 0.5))
            rows.append(BenchRow(job: "warm narinfo, 1 connection, p50", ours: Self.us(ol.p50), nix: Self.us(nl.p50) + " (nginx)",
                                 ratio: String(format: "%.2fx", nl.p50 / ol.p50), target: "< 100 µs", met: ol.p50 < 100e-6))
            rows.append(BenchRow(job: "warm narinfo, 1 connection, p99", ours: Self.us(ol.p99), nix: Self.us(nl.p99) + " (nginx)",
                                 ratio: String(format: "%.2fx", nl.p99 / ol.p99), target: "-", met: nil))
            rows.append(BenchRow(job: "warm narinfo, \(connections) connections, p50 / p99",
                                 ours: Self.us(o.p50) + " / " + Self.us(o.p99), nix: Self.us(n.p50) + " / " + Self.us(n.p99) + " (nginx)",
                                 ratio: "-", target: "-", met: nil))
        } else {
            rows.append(BenchRow(job: "warm narinfo, \(connections) connections, req/s", ours: String(format: "%.0f", o.rate),
                                 nix: "nginx missing", ratio: "-", target: "≥0.5x nginx", met: nil))
            rows.append(BenchRow(job: "warm narinfo, 1 connection, p50", ours: Self.us(ol.p50), nix: "nginx missing",
                                 ratio: "-", target: "< 100 µs", met: ol.p50 < 100e-6))
        }
        Bench.printTable(rows)
        for s in stores { await s.close() }
    }

    /// GETs every narinfo once (curl, 20 at a time); fails unless every one is 200.
    static func fetchAll(_ base: String, _ paths: [StorePath], work: URL) throws {
        let config = work.appendingPathComponent("curl-\(UUID().uuidString.prefix(8))")
        try paths.map { "url = \"\(base)/\($0.hashPart).narinfo\"\noutput = \"/dev/null\"\n" }.joined()
            .write(to: config, atomically: true, encoding: .utf8)
        let out = try PeerFixtures.run(["curl", "-sS", "--parallel", "--parallel-max", "20", "-w", "%{http_code}\\n", "-K", config.path],
                                      check: false)
        let codes = out.text.split(separator: "\n")
        let ok = codes.filter { $0 == "200" }.count
        guard out.status == 0, ok == paths.count else {
            throw BenchFailure("\(base): \(ok) of \(paths.count) narinfos answered 200 (\(Set(codes))) \(out.stderr.prefix(500))")
        }
    }

    /// A wrk run cycling through every narinfo URL; fails on any non-2xx answer or socket error.
    /// Waited for on a thread of its own: blocking one of the two threads our server's
    /// handlers run on would halve it.
    func wrkRun(_ wrk: String, _ base: String, script: String, threads: Int, connections: Int) async throws -> WrkResult {
        let command = [wrk, "-t\(threads)", "-c\(connections)", "-d\(seconds)s", "--latency", "-s", script, base]
        let out = try await Self.offPool { try PeerFixtures.run(command, check: false) }
        guard out.status == 0 else { throw BenchFailure("wrk exited \(out.status): \(out.stderr)") }
        return try WrkResult(parsing: out.text, server: base)
    }

    /// Each wrk thread walks the URL list from its own start.
    static func wrkScript(urls: String) -> String {
        """
        local paths = {}
        for line in io.lines("\(urls)") do paths[#paths + 1] = line end
        local i = 0
        function setup(thread) thread:set("start", math.random(#paths)) end
        function init(args) i = tonumber(start) or 0 end
        function request()
          i = i % #paths + 1
          return wrk.format("GET", paths[i])
        end
        """
    }

    static func nginxConf(root: String, port: Int, work: String) -> String {
        """
        daemon off;
        master_process on;
        worker_processes auto;
        pid \(work)/nginx.pid;
        error_log \(work)/nginx-error.log warn;
        events { worker_connections 1024; }
        http {
          access_log off;
          keepalive_requests 1000000;
          client_body_temp_path \(work)/nginx-tmp;
          types { text/x-nix-narinfo narinfo; }
          server {
            listen 127.0.0.1:\(port);
            root \(root);
          }
        }
        """
    }

    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    static func us(_ seconds: Double) -> String { String(format: "%.0f µs", seconds * 1e6) }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }
}

/// What one wrk run reports: requests per second and latency percentiles (seconds).
struct WrkResult {
    var rate: Double
    var p50: Double
    var p99: Double

    init(rate: Double, p50: Double, p99: Double) {
        self.rate = rate
        self.p50 = p50
        self.p99 = p99
    }

    init(parsing text: String, server: String) throws {
        var rate: Double?, p50: Double?, p99: Double?
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if line.contains("Non-2xx or 3xx responses") || line.hasPrefix("  Socket errors") {
                throw BenchFailure("\(server): wrk saw failures: \(line)")
            }
            if f.first == "Requests/sec:", f.count == 2 { rate = Double(f[1]) }
            if f.count == 2, f[0] == "50%" { p50 = Self.seconds(f[1]) }
            if f.count == 2, f[0] == "99%" { p99 = Self.seconds(f[1]) }
        }
        guard let rate, let p50, let p99 else { throw BenchFailure("\(server): cannot read wrk's output:\n\(text)") }
        self.init(rate: rate, p50: p50, p99: p99)
    }

    /// wrk's `123.45us`, `1.23ms`, `2.00s`.
    static func seconds(_ s: Substring) -> Double? {
        for (unit, scale) in [("us", 1e-6), ("ms", 1e-3), ("s", 1.0)] where s.hasSuffix(unit) {
            return Double(s.dropLast(unit.count)).map { $0 * scale }
        }
        return nil
    }

    /// The run with the median rate (its latencies with it).
    static func median(_ runs: [WrkResult]) -> WrkResult {
        runs.sorted { $0.rate < $1.rate }[runs.count / 2]
    }
}
