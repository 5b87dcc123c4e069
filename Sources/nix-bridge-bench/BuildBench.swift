import ArgumentParser
import Foundation
import PeerFixtures

/// `nix-bridge-bench build`: `nix-bridge build -j0` beside real `nix-build -j0 --builders`
/// on a 2-builder loopback fleet, for a layered graph of cheap `/bin/sh` derivations (each
/// output names its two dependencies, so the closure is the whole graph) of which the lower
/// half is already built and signed on builder1.
///
/// Each measured run gets a graph of its own (a fresh nonce), half of it pre-built on
/// builder1 just before, and a fresh local chroot store: neither tool finds the other's work.
/// Real Nix gets the builders through `--builders` only, as Nix's distributed builds are set
/// up (`--with-substituters` adds a run where they are also `--substituters`).
///
///     swift build -c release --product nix-bridge --product nix-bridge-bench
///     .build/release/nix-bridge-bench build
struct BuildBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "nix-bridge build -j0 vs nix-build -j0 --builders: a 200-derivation graph, half pre-built on a builder."
    )

    @Option(help: "Layers of the graph.") var layers = 10
    @Option(help: "Derivations per layer.") var width = 20
    @Option(help: "Layers pre-built on builder1 (default: half).") var prebuilt: Int?
    @Option(help: "maxJobs of each machine.") var maxJobs = 2
    @Option(help: "Measured runs of each tool (the median is reported).") var runs = 1
    @Option(help: "Seconds real Nix may take.") var nixTimeout = 900
    @Option(help: "The nix-bridge executable (default: next to this one).") var nixBridge: String?
    @Flag(help: "Also time real Nix with the builders as --substituters too (slow: Nix 2.8 reconnects on every miss).")
    var withSubstituters = false

    func run() throws {
        let bench = try Fleet(features: [[], []], maxJobs: maxJobs, label: "nb-bench-build")
        defer { bench.stop() }
        let binary = try nixBridge ?? Self.siblingBinary()
        let half = prebuilt ?? layers / 2
        let count = layers * width
        print("build: \(count) derivations (\(layers) layers of \(width)), \(half * width) pre-built on builder1; machines: \(bench.builders.count) x maxJobs \(maxJobs)")
        print("build: load average at start: \(Self.loadAverage())")
        var ours: [Double] = [], nix: [Double] = [], nixSubs: [Double] = []
        for r in 0..<runs {
            ours.append(try measure("nix-bridge", run: r, bench) { drvs, store in
                [binary, "build", "-j0", "--builders", bench.machinesSpec, "--store", store] + drvs
            })
            nix.append(try measure("nix-build", run: r, bench) { drvs, store in
                ["nix-build", "-j0", "--no-out-link", "--builders", bench.machinesSpec, "--store", store] + drvs
            })
            if withSubstituters {
                nixSubs.append(try measure("nix-build+substituters", run: r, bench) { drvs, store in
                    ["nix-build", "-j0", "--no-out-link", "--builders", bench.machinesSpec, "--store", store,
                     "--option", "substituters", "ssh-ng://builder1 ssh-ng://builder2"] + drvs
                })
            }
        }
        print("build: load average at end: \(Self.loadAverage())")
        let o = Bench.median(ours), n = Bench.median(nix)
        let job = "\(count)-derivation graph, \(half * width) outputs on builder1, -j0, 2 machines"
        var rows = [BenchRow(job: job, ours: Bench.format(o), nix: Bench.format(n) + " (--builders)",
                             ratio: String(format: "%.2fx the time", o / n), target: "≤0.3x the time", met: o / n <= 0.3)]
        if !nixSubs.isEmpty {
            let s = Bench.median(nixSubs)
            rows.append(BenchRow(job: job, ours: Bench.format(o), nix: Bench.format(s) + " (--builders + --substituters)",
                                 ratio: String(format: "%.2fx the time", o / s), target: "report", met: nil))
        }
        Bench.printTable(rows)
    }

    /// One timed run of `tool` on a graph of its own; checks every output is then valid in
    /// the fresh local store, and reports the builds each builder ran.
    func measure(_ tool: String, run: Int, _ bench: Fleet,
                 command: (_ drvs: [String], _ store: String) -> [String]) throws -> Double {
        let graph = try bench.graph(layers: layers, width: width, nonce: "\(tool)-\(run)-\(UInt32.random(in: 0...UInt32.max))")
        let prebuild = try Bench.timeSync { try bench.prebuild(graph, layers: prebuilt ?? layers / 2) }
        let store = try FixtureStore.scratchDirectory("nb-bench-build")
        defer { try? FileManager.default.removeItem(at: store) }
        let storeURI = "local?root=\(store.path)"
        let top = try bench.graphDerivations(graph, attribute: "top", store: storeURI)
        let outputs = try bench.outputs(graph, store: storeURI)
        let before = bench.buildCounts()
        let (seconds, _) = try bench.time(command(top, storeURI), timeout: nixTimeout)
        let after = bench.buildCounts()
        let valid = try bench.validCount(outputs, store: storeURI)
        guard valid == outputs.count else { throw BenchFailure("\(tool): \(valid) of \(outputs.count) outputs valid afterwards") }
        let builds = zip(before, after).enumerated().map { "builder\($0.offset + 1) \($0.element.1 - $0.element.0)" }
        print("build: \(tool) run \(run + 1): \(Bench.format(seconds)); builds run: \(builds.joined(separator: ", ")) "
              + "(pre-build on builder1: \(Bench.format(prebuild)); load \(Self.loadAverage()))")
        return seconds
    }

    /// `nix-bridge` in the directory of this executable.
    static func siblingBinary() throws -> String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let path = exe.deletingLastPathComponent().appendingPathComponent("nix-bridge").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw BenchFailure("\(path) is not built (swift build -c release --product nix-bridge), or pass --nix-bridge")
        }
        return path
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?")
            .split(separator: " ").prefix(3).joined(separator: " ")
    }
}
