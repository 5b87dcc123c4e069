import Foundation
import PeerFixtures

/// The `build` benchmark's world: PeerFixtures' `BuildFleet` with two builders (sandboxed
/// like scripts/fleet's, each signing with its own key, no substituters), a client
/// configuration that trusts those keys and nothing else, and the generated graphs.
final class BuildBenchFleet: @unchecked Sendable {
    let build: BuildFleet
    let environment: [String: String]
    var fleet: SSHFleet { build.fleet }
    var work: URL { build.work }
    var system: String { build.system }
    /// Both machines, as a `--builders` value.
    var machinesSpec: String { "@" + build.machinesFile }

    init(maxJobs: Int) throws {
        build = try BuildFleet(features: [[], []], maxJobs: maxJobs, label: "nb-bench-build")
        let work = build.work
        let conf = work.appendingPathComponent("nixconf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try Data("substituters =\ntrusted-public-keys = \(build.trustedPublicKeys)\n".utf8)
            .write(to: conf.appendingPathComponent("nix.conf"))
        environment = [
            "NIX_SSHOPTS": build.fleet.nixSSHOpts,
            "NIX_CONF_DIR": conf.path,
            "NIX_USER_CONF_FILES": conf.appendingPathComponent("nix.conf").path,
            "XDG_CONFIG_HOME": work.appendingPathComponent("xdg-config").path,
            "XDG_CACHE_HOME": work.appendingPathComponent("xdg-cache").path,
            "XDG_STATE_HOME": work.appendingPathComponent("xdg-state").path,
        ]
    }

    func stop() {
        let dir = fleet.directory
        build.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    /// Writes a graph of `layers` x `width` derivations: derivation (l, i) depends on (l-1, i)
    /// and (l-1, i+1 mod width) and writes their paths into its output. Attributes: `top`
    /// (the last layer), `all`, and `lower` (the first `n` layers, `--arg n N`).
    func graph(layers: Int, width: Int, nonce: String) throws -> String {
        let text = """
            { n ? 0 }:
            let
              node = l: i: deps: derivation {
                name = "bench-${toString l}-${toString i}";
                system = "\(system)";
                builder = "/bin/sh";
                PATH = "/usr/bin:/bin";
                nonce = "\(nonce)";
                args = [ "-c" "echo ${toString l}-${toString i} ${builtins.concatStringsSep " " (map toString deps)} > $out" ];
              };
              next = prev: l: builtins.genList (i: node l i (if prev == [ ] then [ ] else
                [ (builtins.elemAt prev i) (builtins.elemAt prev (if i + 1 == \(width) then 0 else i + 1)) ])) \(width);
              layers = builtins.foldl' (acc: l: acc ++ [ (next (if acc == [ ] then [ ] else builtins.elemAt acc (l - 1)) l) ])
                [ ] (builtins.genList (l: l) \(layers));
            in {
              top = builtins.elemAt layers \(layers - 1);
              all = builtins.concatLists layers;
              lower = builtins.concatLists (builtins.genList (builtins.elemAt layers) n);
            }
            """
        let file = work.appendingPathComponent("graph-\(nonce).nix")
        try Data(text.utf8).write(to: file)
        return file.path
    }

    /// Builds the first `layers` layers on builder1, through its own sshd (signed there).
    func prebuild(_ graph: String, layers: Int) throws {
        guard layers > 0 else { return }
        try fleet.ssh(1, "nix-build -j2 --no-out-link \(graph) -A lower --arg n \(layers) > /dev/null")
    }

    /// Instantiates `attribute` into `store` (and into this machine's /nix/store, where
    /// nix-bridge reads derivations); returns the .drv paths.
    func instantiate(_ graph: String, attribute: String, store: String) throws -> [String] {
        try PeerFixtures.run(["nix-instantiate", graph, "-A", "all"], environment: environment)
        return try PeerFixtures.run(["nix-instantiate", "--store", store, graph, "-A", attribute], environment: environment)
            .text.split(separator: "\n").map(String.init)
    }

    /// Every output path of the graph.
    func outputs(_ graph: String, store: String) throws -> [String] {
        let drvs = try instantiate(graph, attribute: "all", store: store)
        return try PeerFixtures.run(["nix-store", "--store", store, "-q", "--outputs"] + drvs, environment: environment)
            .text.split(separator: "\n").map(String.init)
    }

    /// How many of `paths` are valid in `store`.
    func validCount(_ paths: [String], store: String) throws -> Int {
        let out = try PeerFixtures.run(["nix-store", "--store", store, "--check-validity", "--print-invalid"] + paths,
                                      environment: environment)
        return paths.count - out.text.split(separator: "\n").count
    }

    /// Builds each builder has run so far (Nix keeps one log per build in the store).
    func buildCounts() -> [Int] { (1...fleet.builders.count).map(build.buildCount) }

    /// Runs `command` in the client environment (killed after `timeout` seconds); its wall time.
    func time(_ command: [String], timeout: Int) throws -> (seconds: Double, output: PeerFixtures.Output) {
        let start = ContinuousClock.now
        let out = try PeerFixtures.run(["timeout", "\(timeout)"] + command, environment: environment, check: false)
        let seconds = Bench.seconds(ContinuousClock.now - start)
        if out.status == 124 { throw BenchFailure("timed out after \(timeout) s: \(command.prefix(4).joined(separator: " ")) ...") }
        guard out.status == 0 else {
            throw BenchFailure("\(command.prefix(4).joined(separator: " ")) ... exited \(out.status): \(out.stderr.suffix(2000))")
        }
        return (seconds, out)
    }
}
