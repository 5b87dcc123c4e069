import Foundation
import NixCore
import TestSupport
import Testing

/// `serve --http`'s metrics by builder, scraped while the real nix CLI copies from a fleet of
/// three real builders, one of them behind a link that went silent; then `status` over what
/// the same runs recorded.
@Suite("nix-bridge serve --http: metrics by builder", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI, .hostTools),
       .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && TestSupport.has("curl"), "needs nix (nix-bin), sshd, root and curl"),
       .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"),
       .timeLimit(.minutes(3)))
final class FleetMetricsCLITests {
    let env: Fleet
    let proxy: SilentProxy
    let key1: SigningKey
    let onBuilder1, onBuilder2: StoreFixture
    let environment: [String: String]
    let log: String

    init() throws {
        env = try Fleet(count: 3, label: "nb-cli-fleet-metrics")
        key1 = try SigningKey.generate(name: "builder1-1", in: env.work)
        onBuilder1 = try StoreFixture.closure(size: 3, rootName: "fleet-metrics-one", seed: 171)
        onBuilder2 = try StoreFixture.closure(size: 2, rootName: "fleet-metrics-two", seed: 172)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: onBuilder1, signWith: key1)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(2).storeRoot), fixture: onBuilder2, signWith: key1)
        // builder3 answers TCP but never a byte: every ask of it times out.
        proxy = try SilentProxy(targetPort: env.builder(3).port, silentFromStart: true)
        let config = try env.sshConfig(sending: 3, toPort: proxy.port, name: "silent")
        var e = env.environment
        e["NIX_SSHOPTS"] = "-F \(config)"
        environment = e
        log = env.work.appendingPathComponent("serve.log").path
    }

    deinit { proxy.stop() }

    var fleetArgs: [String] {
        ["--builders", "ssh-ng://builder1 x86_64-linux ; ssh-ng://builder2 x86_64-linux ; ssh-ng://builder3 x86_64-linux",
         "--option", "trusted-public-keys", key1.publicKey, "--option", "connect-timeout", "2",
         "--narinfo-cache", env.work.appendingPathComponent("narinfo.sqlite").path]
    }

    /// `serve --http 127.0.0.1:0`; returns it with its URL once it listens.
    func serve() throws -> (SpawnedProcess, String) {
        let binary = try #require(CLI.binary)
        try? FileManager.default.removeItem(atPath: log)
        let process = try SpawnedProcess([binary, "serve", "--http", "127.0.0.1:0"] + fleetArgs, logFile: log, environment: environment)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("http://") }) { return (process, String(line)) }
            usleep(50_000)
        }
        process.stop()
        throw SigningFixtures.Failure("serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    func scrape(_ url: String) throws -> [String: Double] {
        let got = try ServeMetricsCLITests.curl(url + "/metrics")
        #expect(got.status == 200)
        return try ServeMetricsCLITests.parse(got.body)
    }

    static func narBytes(_ f: StoreFixture) throws -> Double { try f.pathInfos().reduce(0) { $0 + Double($1.narSize) } }

    @Test func bytesErrorsAndCacheAnswersByBuilder() throws {
        let b1 = "{builder=\"ssh-ng://builder1\"}", b2 = "{builder=\"ssh-ng://builder2\"}", b3 = "{builder=\"ssh-ng://builder3\"}"
        let roots = [onBuilder1, onBuilder2].map { StoreDirectory.default.print($0.roots[0]) }
        let (server, url) = try serve()
        let dest = env.newLocalStore("fleet-metrics-dest")
        let copy = try env.nix(["copy", "--from", url, "--to", dest, "--option", "trusted-public-keys", key1.publicKey] + roots,
                               check: false)
        #expect(copy.status == 0, "\(copy.stderr)")
        let m = try scrape(url)
        server.stop()
        let body = m.map { "\($0.key) \($0.value)" }.sorted().joined(separator: "\n")
        // Every NAR came from the one builder holding it, each byte once; and that is what was sent.
        #expect(m["nix_bridge_builder_nar_bytes_total\(b1)"] == (try Self.narBytes(onBuilder1)), "\(body)")
        #expect(m["nix_bridge_builder_nar_bytes_total\(b2)"] == (try Self.narBytes(onBuilder2)), "\(body)")
        #expect(m["nix_bridge_builder_nar_bytes_total\(b3)"] == nil, "\(body)")
        #expect(m["nix_bridge_http_nar_bytes_total"] == (try Self.narBytes(onBuilder1) + Self.narBytes(onBuilder2)), "\(body)")
        // The silent builder: its first ask timed out; then it was remembered and not asked.
        #expect((m["nix_bridge_builder_timeouts_total\(b3)"] ?? 0) >= 1, "\(body)")
        #expect(m["nix_bridge_builder_errors_total\(b3)"] == m["nix_bridge_builder_timeouts_total\(b3)"], "\(body)")
        #expect(m["nix_bridge_builder_errors_total\(b1)"] == nil && m["nix_bridge_builder_errors_total\(b2)"] == nil, "\(body)")
        // A new cache file: builder1 and builder2 were asked about every path (misses), and how long they took is a histogram.
        #expect((m["nix_bridge_narinfo_cache_paths_total{builder=\"ssh-ng://builder1\",result=\"miss\"}"] ?? 0) >= 3, "\(body)")
        #expect((m["nix_bridge_builder_lookup_seconds_count\(b1)"] ?? 0) >= 1, "\(body)")
        #expect(m.keys.contains { $0.hasPrefix("nix_bridge_builder_lookup_seconds_bucket{builder=\"ssh-ng://builder2\"") }, "\(body)")
        #expect((m["nix_bridge_http_connections_open"] ?? 0) >= 1, "the scrape's own connection: \(body)")

        // A second server with the same narinfo cache, asked for builder1's root (and so, ahead
        // of the client, for its references: its whole closure): builder1's and builder2's
        // answers come from the cache (builder2's "not there" too) and neither is asked;
        // builder3 had no answer cached.
        let (again, url2) = try serve()
        defer { again.stop() }
        #expect(try ServeMetricsCLITests.curl(url2 + "/\(onBuilder1.roots[0].hashPart).narinfo").status == 200)
        let m2 = try scrape(url2)
        let n = Double(onBuilder1.items.count)
        let body2 = m2.map { "\($0.key) \($0.value)" }.sorted().joined(separator: "\n")
        #expect(m2["nix_bridge_narinfo_cache_paths_total{builder=\"ssh-ng://builder1\",result=\"hit\"}"] == n, "\(body2)")
        #expect(m2["nix_bridge_narinfo_cache_paths_total{builder=\"ssh-ng://builder2\",result=\"hit\"}"] == n, "\(body2)")
        #expect(m2["nix_bridge_narinfo_cache_paths_total{builder=\"ssh-ng://builder1\",result=\"miss\"}"] == nil, "\(body2)")
        #expect(m2["nix_bridge_narinfo_cache_paths_total{builder=\"ssh-ng://builder3\",result=\"miss\"}"] == n, "\(body2)")
        #expect(m2["nix_bridge_builder_lookup_seconds_count\(b1)"] == nil, "not asked: \(body2)")

        // status: what the servers recorded, by builder.
        let status = try TestSupport.run([try #require(CLI.binary), "status", "--json"] + fleetArgs, environment: environment, check: false)
        #expect(status.status == 0, "\(status.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any])
        let machines = try #require(o["machines"] as? [[String: Any]])
        let activity = machines.map { $0["activity"] as? [String: Any] ?? [:] }
        #expect(activity[0]["substitutions"] as? Int == onBuilder1.items.count, "\(activity)")
        #expect((activity[0]["narBytes"] as? Int).map(Double.init) == (try Self.narBytes(onBuilder1)), "\(activity)")
        #expect(activity[1]["substitutions"] as? Int == onBuilder2.items.count, "\(activity)")
        #expect(activity[2]["substitutions"] as? Int == 0 && activity[2]["builds"] as? Int == 0, "\(activity)")
        let cache = try #require(o["cache"] as? [String: Any])
        let hits = try #require(cache["hits"] as? Int), misses = try #require(cache["misses"] as? Int)
        #expect(hits >= 2 && misses >= 3, "\(cache)")
        #expect(cache["hitRate"] as? Double == Double(hits) / Double(hits + misses), "\(cache)")
        #expect(o["activityWindowSeconds"] as? Int == 86400)
    }
}
