import Foundation
import PeerFixtures

/// The `build` benchmark's world is PeerFixtures' building `Fleet` (two builders, sandboxed
/// like scripts/fleet's, each signing with its own key, no substituters; a client that trusts
/// those keys and nothing else); this adds the generated graphs and timed runs.
extension Fleet {
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
        try ssh(1, "nix-build -j2 --no-out-link \(graph) -A lower --arg n \(layers) > /dev/null")
    }

    /// Instantiates `attribute` into `store` (and into this machine's /nix/store, where
    /// nix-bridge reads derivations); returns the .drv paths.
    func graphDerivations(_ graph: String, attribute: String, store: String) throws -> [String] {
        try PeerFixtures.run(["nix-instantiate", graph, "-A", "all"], environment: environment)
        return try PeerFixtures.run(["nix-instantiate", "--store", store, graph, "-A", attribute], environment: environment)
            .text.split(separator: "\n").map(String.init)
    }

    /// Every output path of the graph.
    func outputs(_ graph: String, store: String) throws -> [String] {
        let drvs = try graphDerivations(graph, attribute: "all", store: store)
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
    func buildCounts() -> [Int] { (1...builders.count).map(buildCount) }

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
