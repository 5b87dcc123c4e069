import ArgumentParser
import Foundation
import PeerFixtures

/// `nix-bridge-bench daemon`: a plain user's `nix-build` through a root `nix-daemon` (Nix 2.8,
/// set up as Docs/Setup.md says, `max-jobs = 0`) of a closure that only the 3rd of 3 builders
/// holds: with the bridge (`nix-bridge serve` and its relay) as the daemon's only
/// substituter, against the daemon with the 3 builders as its substituters. Each run starts
/// from an empty daemon store; every run is checked complete and nothing may be built.
///
///     swift build -c release --product nix-bridge --product nix-bridge-bench
///     .build/release/nix-bridge-bench daemon
struct DaemonBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "nix-build through a nix-daemon: the bridge as substituter vs the builders as substituters."
    )

    @Option(help: "Paths in the closure held by the 3rd builder.") var closure = 51
    @Option(help: "Runs of each (the median is reported).") var runs = 1
    @Option(help: "The nix-bridge executable (default: next to this one).") var nixBridge: String?

    func run() throws {
        let s = try DaemonFleet(binary: try nixBridge ?? ServeBench.sibling("nix-bridge"), builders: 3, label: "nb-bench-daemon")
        defer { s.stop() }
        let f = s.fleet
        // A chain: each output names the one before it, so the top's closure is the whole chain.
        let nonce = UUID().uuidString.prefix(8).lowercased()
        let chain = """
            let node = i: derivation {
              name = "chain-\(nonce)-${toString i}"; system = "\(f.system)"; builder = "/bin/sh";
              args = [ "-c" (if i == 0 then "echo 0 > $out" else "echo ${node (i - 1)} > $out") ];
            }; in node \(closure - 1)
            """
        let expression = try s.file("chain.nix", chain)
        let top = try f.buildOnBuilder(3, expression: chain)
        let builds = (1...3).map(f.buildCount)
        let builders = f.builders.map { "ssh-ng://\($0.name)" }.joined(separator: " ")

        func timed(_ label: String) throws -> Double {
            let start = ContinuousClock.now
            let out = try s.asUser(["nix-build", "--no-out-link", expression])
            let t = Bench.seconds(ContinuousClock.now - start)
            guard out.status == 0, out.trimmed == top else {
                throw BenchFailure("\(label): nix-build exited \(out.status): \(out.stderr.suffix(2000))\n\(s.logs.suffix(2000))")
            }
            let held = try PeerFixtures.run(["nix-store", "--store", "local?root=\(s.daemonStore)", "-qR", top]).text
            let n = held.split(separator: "\n").count
            guard n == closure else { throw BenchFailure("\(label): the daemon holds \(n) paths of the closure, expected \(closure)") }
            guard (1...3).map(f.buildCount) == builds else { throw BenchFailure("\(label): a builder built something") }
            return t
        }
        var ours: [Double] = [], nix: [Double] = []
        for i in 0..<runs {
            if i > 0 { try s.restartDaemon(substituters: nil) }
            ours.append(try timed("bridge as substituter"))
            try s.restartDaemon(substituters: builders)
            nix.append(try timed("builders as substituters"))
            try s.restartDaemon(substituters: nil)
        }
        print("daemon: \(closure)-path closure on builder3: the bridge \(ours.map(Bench.format)), "
              + "the 3 builders \(nix.map(Bench.format)); load \(ServeBench.loadAverage)")
        let o = Bench.median(ours), n = Bench.median(nix)
        Bench.printTable([BenchRow(job: "nix-build through nix-daemon (Nix 2.8), \(closure) paths held by the 3rd of 3 builders",
                                   ours: "\(Bench.format(o)), the bridge as only substituter",
                                   nix: "\(Bench.format(n)), substituters = the 3 builders",
                                   ratio: String(format: "%.2fx the time", o / n), target: "faster than the builders as substituters",
                                   met: o < n)])
    }
}
