import ArgumentParser
import Foundation
import NixCore
import NixStore
import NixTransport
import PeerFixtures

/// `nix-bridge-bench store`: the ssh-ng store client beside real Nix 2.8 in
/// the same run, against its own loopback builder (Fleet) holding signed fixture paths:
/// QueryPathInfo of many paths (loopback and behind a 10 ms RTT proxy) and NarFromPath of one
/// large path (vs a raw `cat` over the same libssh2 transport and vs `nix copy --from`).
///
///     swift build -c release --product nix-bridge-bench
///     .build/release/nix-bridge-bench store
struct StoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "ssh-ng store client: QueryPathInfo and NarFromPath vs nix path-info / nix copy."
    )

    @Option(help: "Signed paths in the builder's store; each count of --counts must be ≤ this.") var paths = 10_000
    @Option(parsing: .upToNextOption, help: "Path counts queried.") var counts: [Int] = [1_000, 10_000]
    @Option(help: "Runs per loopback measurement (best and median reported).") var runs = 5
    @Option(help: "Runs of real Nix behind the latency proxy (it pays one round trip per path).") var slowNixRuns = 1
    @Option(help: "One-way delay added by the latency proxy, in ms (RTT grows by twice this).") var delayMs = 5
    @Option(help: "Size of the NarFromPath path in MiB (0 skips the NAR part).") var narMebibytes = 200
    @Option(help: "Interleaved rounds of the NAR measurements.") var narRuns = 5
    @Flag(help: "Skip the latency-proxy measurements.") var skipSlow = false
    @Flag(help: "Skip the QueryPathInfo measurements (NarFromPath only).") var skipQuery = false

    func validate() throws {
        guard counts.allSatisfy({ $0 > 0 && $0 <= paths }) else { throw ValidationError("every --counts must be in 1...--paths") }
        guard runs > 0, narRuns > 0, slowNixRuns > 0 else { throw ValidationError("runs must be positive") }
    }

    func run() throws {
        guard PeerFixtures.hasNix, Fleet.canRun else {
            throw ValidationError("needs nix (nix-bin), sshd (openssh-server) and root")
        }
        let started = ContinuousClock.now
        let fleet = try Fleet(count: 1)
        let scratch = try FixtureStore.scratchDirectory("nb-bench-store")
        var proxy: LatencyProxy?
        defer {
            proxy?.stop()
            fleet.stop()
            try? FileManager.default.removeItem(at: scratch)
            try? FileManager.default.removeItem(at: fleet.directory)
        }
        let builder = fleet.builders[0]

        // Builder 1's store: `paths` small signed paths (plus one large one for NarFromPath).
        let setup = ContinuousClock.now
        let key = try SigningKey.generate(name: "bench-builder1", in: fleet.directory)
        let small = try StoreFixture.make(count: paths)
        let large = narMebibytes > 0 ? try StoreFixture.large(mebibytes: narMebibytes) : nil
        let store = try FixtureStore.create(at: URL(fileURLWithPath: builder.storeRoot),
                                            fixture: StoreFixture.combined([small] + (large.map { [$0] } ?? [])),
                                            signWith: key)
        let infos = Dictionary(store.infos.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        print(String(format: "builder1: %d signed paths%@ imported in %.1f s", paths,
                     large == nil ? "" : " + one \(narMebibytes) MiB path", seconds(ContinuousClock.now - setup)))

        // A second ssh_config host for the same builder through the latency proxy.
        let slowConfig = fleet.directory.appendingPathComponent("ssh_config_bench").path
        var configText = try String(contentsOfFile: fleet.sshConfig, encoding: .utf8)
        if !skipSlow {
            let p = try LatencyProxy(targetPort: builder.port, delay: .milliseconds(delayMs))
            proxy = p
            configText += configText.components(separatedBy: "\n\n")[0]
                .replacingOccurrences(of: "Host \(builder.name)\n", with: "Host \(builder.name)slow\n")
                .replacingOccurrences(of: "Port \(builder.port)\n", with: "Port \(p.port)\n") + "\n\n"
        }
        try configText.write(toFile: slowConfig, atomically: true, encoding: .utf8)
        let sshConfig = try SSHConfig.load(path: slowConfig)
        let env = StoreBenchEnvironment(sshConfigPath: slowConfig, sshConfig: sshConfig, infos: infos, scratch: scratch)

        var table = ResultTable()
        let hosts = [(builder.name, "loopback")] + (skipSlow ? [] : [("\(builder.name)slow", "RTT +\(2 * delayMs) ms")])
        for (host, label) in skipQuery ? [] : hosts {
            let nixRuns = host == builder.name ? runs : slowNixRuns
            for n in counts {
                let query = Array(small.paths.prefix(n))
                var ours: [Stats] = []
                for conns in [1, 2] {
                    let s = try env.ourQuery(host: host, paths: query, maxConnections: conns, runs: runs)
                    ours.append(s)
                    print("  ours   QueryPathInfo \(n) \(label) maxConnections \(conns): \(s)")
                }
                let theirs = try env.nixPathInfo(host: host, paths: query, runs: nixRuns)
                print("  nix    path-info \(n) \(label): \(theirs)")
                let target = host == builder.name ? 3.0 : 50.0
                for (i, s) in ours.enumerated() {
                    table.add("QueryPathInfo ×\(n), \(label), maxConnections \(i + 1)", ours: s, nix: theirs,
                              unit: .seconds, target: i == 0 ? target : nil)
                }
            }
        }
        if let large {
            try env.narBenchmarks(host: builder.name, storeRoot: builder.storeRoot, path: large.paths[0],
                                  fleetDirectory: fleet.directory, runs: narRuns, into: &table)
        }
        print("")
        print(table.render())
        print(String(format: "total %.0f s (set-up included); load average at the end: %@", seconds(ContinuousClock.now - started),
                     (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"))
    }
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Best and median of several timings (seconds).
struct Stats: CustomStringConvertible {
    var samples: [Double]
    var best: Double { samples.min() ?? .nan }
    var median: Double {
        let s = samples.sorted()
        return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var description: String {
        String(format: "best %.3f s, median %.3f s (%d runs: %@)", best, median, samples.count,
               samples.map { String(format: "%.3f", $0) }.joined(separator: " "))
    }
}

/// The summary table: our figure, Nix's (or the raw baseline's), the ratio and the target.
struct ResultTable {
    enum Unit { case seconds, mebibytesPerSecond(bytes: Double) }
    private var rows: [[String]] = []

    /// `target`: the required ratio (baseline time / our time).
    mutating func add(_ job: String, ours: Stats, nix: Stats, unit: Unit, target: Double?, baseline: String = "Nix 2.8") {
        func cell(_ s: Stats) -> String {
            switch unit {
            case .seconds: return String(format: "%.3f s / %.3f s", s.best, s.median)
            case let .mebibytesPerSecond(bytes):
                return String(format: "%.0f / %.0f MiB/s", bytes / 1_048_576 / s.best, bytes / 1_048_576 / s.median)
            }
        }
        let ratio = nix.median / ours.median
        let targetText = target.map { t in String(format: "≥%@x: %@", t < 1 ? String(format: "%.2f", t) : String(format: "%.1f", t),
                                                  ratio >= t ? "met" : "MISSED") } ?? ""
        rows.append([job, cell(ours), "\(baseline): " + cell(nix), String(format: "%.2fx", ratio), targetText])
    }

    func render() -> String {
        var out = "| job | nix-bridge (best / median) | baseline (best / median) | ratio (medians) | target |\n"
        out += "| --- | --- | --- | --- | --- |\n"
        for r in rows { out += "| " + r.joined(separator: " | ") + " |\n" }
        return out
    }
}
