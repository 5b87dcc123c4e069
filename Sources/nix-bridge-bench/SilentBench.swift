import ArgumentParser
import Foundation
import NixCore
import PeerFixtures

/// `nix-bridge-bench silent`: how long `nix-bridge lookup` and `substitute` take to give up on
/// a builder whose link went silent (a `SilentProxy` that forwards nothing and resets
/// nothing), with the default settings, and on the next run, when the failure is remembered
/// (`FailedBuilders`); beside real Nix asking the same builder (`nix path-info --store
/// ssh-ng://builder3`, killed at a cap). Three builders; builder1 and builder2 hold the
/// paths, builder3 sits behind the silent link.
///
///     swift build -c release --product nix-bridge --product nix-bridge-bench
///     .build/release/nix-bridge-bench silent
struct SilentBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silent",
        abstract: "Time for lookup and substitute to give up on a silent builder, and on the next run."
    )

    @Option(help: "Paths looked up and substituted.") var paths = 50
    @Option(help: "Runs of each measurement (the median is reported).") var runs = 3
    @Option(help: "Seconds real Nix may wait on the silent builder before it is killed.") var nixCap = 30
    @Option(help: "The nix-bridge executable (default: next to this one).") var nixBridge: String?

    func run() throws {
        let binary = try nixBridge ?? ServeBench.sibling("nix-bridge")
        let bench = try BenchFleet(builders: 3)
        defer { bench.stop() }
        let fixture = try StoreFixture.make(count: paths, seed: 61, namePrefix: "silent")
        try bench.fill(builder: 1, with: fixture)
        try bench.fill(builder: 2, with: fixture)
        let proxy = try SilentProxy(targetPort: bench.fleet.builders[2].port, silentFromStart: true)
        defer { proxy.stop() }
        let sshConfig = bench.work.path + "/ssh_config_silent"
        try ("Host builder3\n  Port \(proxy.port)\n\n" + String(contentsOfFile: bench.fleet.sshConfig, encoding: .utf8))
            .write(toFile: sshConfig, atomically: true, encoding: .utf8)
        let conf = bench.work.appendingPathComponent("nixconf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try Data().write(to: conf.appendingPathComponent("nix.conf"))
        let state = bench.work.path + "/state"
        let env = ["NIX_SSHOPTS": "-F \(sshConfig)", "NIX_CONF_DIR": conf.path,
                   "NIX_USER_CONF_FILES": conf.appendingPathComponent("nix.conf").path,
                   "NIX_BRIDGE_STATE_DIR": state]
        let printed = fixture.printedPaths
        let builders = (1...3).map { "ssh-ng://builder\($0) x86_64-linux - 1 1" }.joined(separator: " ; ")
        let common = ["--builders", builders, "--option", "trusted-public-keys", bench.trustedKeys]
        // The same work with builder3 not configured at all: what a run costs without waiting.
        let healthy = ["--builders", builders.components(separatedBy: " ; ").prefix(2).joined(separator: " ; "),
                       "--option", "trusted-public-keys", bench.trustedKeys]

        /// One command with nothing remembered, then the same again (the failure remembered),
        /// then with builder3 not configured.
        func pair(_ args: (Int, [String]) throws -> [String], check: (PeerFixtures.Output) -> Bool) throws -> (first: Double, next: Double, healthy: Double) {
            var firsts: [Double] = [], nexts: [Double] = [], baseline: [Double] = []
            for run in 0..<runs {
                try? FileManager.default.removeItem(atPath: state + "/failed-builders")
                for i in 0..<3 {
                    let command = [binary] + (try args(run * 3 + i, i == 2 ? healthy : common))
                    let start = ContinuousClock.now
                    let out = try PeerFixtures.run(command, environment: env, check: false)
                    let t = Bench.seconds(ContinuousClock.now - start)
                    guard check(out) else { throw BenchFailure("\(command[1]) exited \(out.status): \(out.stderr.suffix(1500))") }
                    if i == 2 { baseline.append(t); continue }
                    guard out.stderr.contains("ssh-ng://builder3") else { throw BenchFailure("builder3's failure not reported: \(out.stderr.suffix(800))") }
                    if i == 0 { firsts.append(t) } else { nexts.append(t) }
                }
            }
            return (Bench.median(firsts), Bench.median(nexts), Bench.median(baseline))
        }

        let cacheDir = bench.work.path
        let lookup = try pair({ n, fleet in ["lookup"] + fleet + ["--narinfo-cache", "\(cacheDir)/lookup-\(n).sqlite"] + printed }) { out in
            out.status == 0 && out.text.components(separatedBy: "ssh-ng://builder1: signed by").count == printed.count + 1
        }
        print("silent: lookup of \(printed.count) paths gives up on builder3 after \(Bench.format(lookup.first)), next run \(Bench.format(lookup.next)); without builder3 \(Bench.format(lookup.healthy))")
        let substitute = try pair({ n, fleet in
            let dest = try FixtureStore.scratchDirectory("nb-bench-silent-dest").path
            return ["substitute", "--store", "local?root=\(dest)"] + fleet + ["--narinfo-cache", "\(cacheDir)/subst-\(n).sqlite"] + printed
        }) { $0.status == 0 }
        print("silent: substitute of \(printed.count) paths gives up on builder3 after \(Bench.format(substitute.first)), next run \(Bench.format(substitute.next)); without builder3 \(Bench.format(substitute.healthy))")

        // Real Nix asking builder3 alone (it asks one store at a time: that is all it waits on).
        let start = ContinuousClock.now
        let nix = try PeerFixtures.run(["timeout", "\(nixCap)", "nix", "path-info", "--store", "ssh-ng://builder3", printed[0]],
                                       environment: bench.nixEnvironment(sshConfig: sshConfig), check: false)
        let nixTime = Bench.seconds(ContinuousClock.now - start)
        let nixText = nix.status == 124 ? "> \(nixCap) s (killed)" : "\(Bench.format(nixTime)) (exit \(nix.status))"
        print("silent: nix path-info --store ssh-ng://builder3: \(nixText)")

        Bench.printTable([
            BenchRow(job: "lookup \(printed.count) paths, 3 builders, builder3 silent, defaults", ours: Bench.format(lookup.first),
                     nix: nixText, ratio: "-", target: "≤ 15 s", met: lookup.first <= 15),
            BenchRow(job: "same, next run (failure remembered)", ours: Bench.format(lookup.next),
                     nix: "without builder3: \(Bench.format(lookup.healthy))", ratio: "-", target: "≤ 0.5 s", met: lookup.next <= 0.5),
            BenchRow(job: "substitute \(printed.count) paths, builder3 silent, defaults", ours: Bench.format(substitute.first),
                     nix: nixText, ratio: "-", target: "≤ 15 s", met: substitute.first <= 15),
            BenchRow(job: "same, next run (failure remembered)", ours: Bench.format(substitute.next),
                     nix: "without builder3: \(Bench.format(substitute.healthy))", ratio: "-", target: "≤ 0.5 s", met: substitute.next <= 0.5),
        ])
    }
}
