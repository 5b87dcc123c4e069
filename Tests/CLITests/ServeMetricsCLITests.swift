import Foundation
import NixCore
import TestSupport
import Testing

/// `serve --http`'s Prometheus metrics, scraped with curl while the real nix CLI substitutes
/// from it, and its request log with `-v`.
@Suite("nix-bridge serve --http: /metrics and logs", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI, .hostTools),
       .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && TestSupport.has("curl"), "needs nix (nix-bin), sshd, root and curl"),
       .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class ServeMetricsCLITests {
    let env: Fleet
    let key1: SigningKey
    let closure: StoreFixture
    let log: String

    init() throws {
        env = try Fleet(count: 1, label: "nb-cli-metrics")
        key1 = try SigningKey.generate(name: "builder1-1", in: env.work)
        closure = try StoreFixture.closure(size: 4, rootName: "cli-metrics-root", seed: 91)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: closure, signWith: key1)
        log = env.work.appendingPathComponent("serve.log").path
    }

    /// Starts `serve --http 127.0.0.1:0 EXTRA`; returns it with the lines it printed once
    /// every line starting with one of `prefixes` is there.
    func serve(_ extra: [String], waitFor prefixes: [String]) throws -> (SpawnedProcess, [String: String]) {
        let binary = try #require(CLI.binary)
        let process = try SpawnedProcess([binary, "serve", "--http", "127.0.0.1:0", "--builders", "ssh-ng://builder1 x86_64-linux",
                                          "--option", "trusted-public-keys", key1.publicKey,
                                          "--narinfo-cache", env.work.appendingPathComponent("narinfo.sqlite").path] + extra,
                                         logFile: log, environment: env.environment)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            var found: [String: String] = [:]
            for p in prefixes { if let l = lines.first(where: { $0.hasPrefix(p) }) { found[p] = l } }
            if found.count == prefixes.count { return (process, found) }
            usleep(50_000)
        }
        process.stop()
        throw SigningFixtures.Failure("serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    func curl(_ url: String) throws -> (status: Int, body: String) { try Self.curl(url) }

    static func curl(_ url: String) throws -> (status: Int, body: String) {
        let out = try TestSupport.run(["curl", "-s", "-w", "\n%{http_code}", url], check: false)
        let text = out.text
        let cut = try #require(text.lastIndex(of: "\n"))
        return (Int(text[text.index(after: cut)...]) ?? 0, String(text[..<cut]))
    }

    /// Prometheus' text format: `name{labels} value` lines (comments skipped), by `name{labels}`.
    static func parse(_ text: String) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let cut = try #require(line.lastIndex(of: " "), "\(line)")
            let value: Double = try #require(Double(String(line[line.index(after: cut)...])), "\(line)")
            out[String(line[..<cut])] = value
        }
        return out
    }

    @Test func countsWhatNixFetchedAndLogsEachRequest() throws {
        let (server, lines) = try serve(["-v"], waitFor: ["http://"])
        defer { server.stop() }
        let url = try #require(lines["http://"])
        let dest = env.newLocalStore("metrics-dest")
        let root = StoreDirectory.default.print(try #require(closure.roots.first))
        let copy = try env.nix(["copy", "--from", url, "--to", dest, "--option", "trusted-public-keys", key1.publicKey, root], check: false)
        #expect(copy.status == 0, "\(copy.stderr)")
        let missing = try curl(url + "/00000000000000000000000000000000.narinfo")
        #expect(missing.status == 404)

        let scrape = try curl(url + "/metrics")
        #expect(scrape.status == 200)
        let m = try Self.parse(scrape.body)
        let n = Double(closure.items.count)
        #expect(m["nix_bridge_http_requests_total{kind=\"nar\",status=\"200\"}"] == n, "\(scrape.body)")
        #expect((m["nix_bridge_http_requests_total{kind=\"narinfo\",status=\"200\"}"] ?? 0) >= n, "\(scrape.body)")
        #expect(m["nix_bridge_http_requests_total{kind=\"narinfo\",status=\"404\"}"] == 1, "\(scrape.body)")
        #expect((m["nix_bridge_http_requests_total{kind=\"nix-cache-info\",status=\"200\"}"] ?? 0) >= 1, "\(scrape.body)")
        #expect(m["nix_bridge_narinfo_seconds_count{status=\"200\"}"] == m["nix_bridge_http_requests_total{kind=\"narinfo\",status=\"200\"}"])
        #expect(m.keys.contains { $0.hasPrefix("nix_bridge_narinfo_seconds_bucket{") }, "a histogram: \(scrape.body)")
        let narBytes = try closure.pathInfos().reduce(0) { $0 + Double($1.narSize) }
        #expect(m["nix_bridge_http_nar_bytes_total"] == narBytes, "\(scrape.body)")
        #expect(m["nix_bridge_http_requests_in_flight"] == 1, "the scrape itself")
        // Nix asks for each narinfo once per run; a second ask is answered from memory.
        #expect((m["nix_bridge_http_narinfo_answers_total{source=\"fleet\"}"] ?? 0) >= n, "\(scrape.body)")
        #expect(try curl(url + "/\(try #require(closure.roots.first).hashPart).narinfo").status == 200)
        let again = try Self.parse(try curl(url + "/metrics").body)
        #expect(again["nix_bridge_http_narinfo_answers_total{source=\"memory\"}"] == (m["nix_bridge_http_narinfo_answers_total{source=\"memory\"}"] ?? 0) + 1)

        // -v: one line per request, with its path and status.
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("GET /nix-cache-info 200"), "\(text)")
        #expect(text.contains("GET /00000000000000000000000000000000.narinfo 404"), "\(text)")
        #expect(text.contains("GET /\(try #require(closure.roots.first).hashPart).narinfo 200"), "\(text)")
    }

    @Test func metricsOnAListenerOfTheirOwn() throws {
        let (server, lines) = try serve(["--metrics", "127.0.0.1:0"], waitFor: ["http://", "metrics: http://"])
        defer { server.stop() }
        let url = try #require(lines["http://"])
        let metricsURL = String(try #require(lines["metrics: http://"]).dropFirst("metrics: ".count))
        #expect(try curl(url + "/nix-cache-info").status == 200)
        #expect(try curl(url + "/metrics").status == 404, "not on the cache's listener")
        let scrape = try curl(metricsURL)
        #expect(scrape.status == 200)
        let m = try Self.parse(scrape.body)
        #expect(m["nix_bridge_http_requests_total{kind=\"nix-cache-info\",status=\"200\"}"] == 1, "\(scrape.body)")
        #expect(m["nix_bridge_http_requests_total{kind=\"metrics\",status=\"404\"}"] == 1, "\(scrape.body)")
        // Without -v, no request lines.
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(!text.contains("GET /nix-cache-info"), "\(text)")
    }
}
