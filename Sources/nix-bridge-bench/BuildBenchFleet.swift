import Foundation
import TestSupport

/// The `build` benchmark's world: two loopback builders that build in the sandbox (seeing the
/// host's /bin/sh and coreutils) and sign with their own keys, a client configuration that
/// trusts those keys and nothing else, and the generated derivation graphs.
final class BuildBenchFleet: @unchecked Sendable {
    let fleet: SSHFleet
    let work: URL
    let keys: [SigningKey]
    let system: String
    /// Machines-file lines, one per builder.
    let machines: [String]
    let environment: [String: String]

    init(maxJobs: Int) throws {
        work = try TestSupport.temporaryDirectory("nb-bench-build")
        let paths = ["/bin", "/usr", "/lib", "/lib64"].filter { FileManager.default.fileExists(atPath: $0) }
        // No substituters on the builders: Nix's default (cache.nixos.org) is unreachable here
        // and each try costs seconds of retries.
        fleet = try SSHFleet(count: 2, extraNixConf: ["sandbox-paths = \(paths.joined(separator: " "))", "substituters ="])
        let work = work
        keys = try (1...2).map { try SigningKey.generate(name: "builder\($0)-1", in: work) }
        // Each builder signs what it builds with its own key (nix.conf is read per session).
        for (b, key) in zip(fleet.builders, keys) {
            let conf = URL(fileURLWithPath: b.nixConfDir).appendingPathComponent("nix.conf")
            let handle = try FileHandle(forWritingTo: conf)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("secret-key-files = \(key.secretKeyFile.path)\n".utf8))
            try handle.close()
        }
        system = try TestSupport.run(["nix-instantiate", "--eval", "--expr", "builtins.currentSystem"]).trimmed
            .trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        let client = fleet.clientKey, system = system
        machines = fleet.builders.map { "\($0.storeURI) \(system) \(client) \(maxJobs) 1 - - \($0.hostKeyBase64)" }
        let conf = work.appendingPathComponent("nixconf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try Data("substituters =\ntrusted-public-keys = \(keys.map(\.publicKey).joined(separator: " "))\n".utf8)
            .write(to: conf.appendingPathComponent("nix.conf"))
        environment = [
            "NIX_SSHOPTS": fleet.nixSSHOpts,
            "NIX_CONF_DIR": conf.path,
            "NIX_USER_CONF_FILES": conf.appendingPathComponent("nix.conf").path,
            "XDG_CONFIG_HOME": work.appendingPathComponent("xdg-config").path,
            "XDG_CACHE_HOME": work.appendingPathComponent("xdg-cache").path,
            "XDG_STATE_HOME": work.appendingPathComponent("xdg-state").path,
        ]
    }

    /// `--builders` value naming both machines.
    var machinesSpec: String { machines.joined(separator: " ; ") }

    func stop() {
        fleet.stop()
        try? FileManager.default.removeItem(at: fleet.directory)
        try? FileManager.default.removeItem(at: work)
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
        try TestSupport.run(["nix-instantiate", graph, "-A", "all"], environment: environment)
        return try TestSupport.run(["nix-instantiate", "--store", store, graph, "-A", attribute], environment: environment)
            .text.split(separator: "\n").map(String.init)
    }

    /// Every output path of the graph.
    func outputs(_ graph: String, store: String) throws -> [String] {
        let drvs = try instantiate(graph, attribute: "all", store: store)
        return try TestSupport.run(["nix-store", "--store", store, "-q", "--outputs"] + drvs, environment: environment)
            .text.split(separator: "\n").map(String.init)
    }

    /// How many of `paths` are valid in `store`.
    func validCount(_ paths: [String], store: String) throws -> Int {
        let out = try TestSupport.run(["nix-store", "--store", store, "--check-validity", "--print-invalid"] + paths,
                                      environment: environment)
        return paths.count - out.text.split(separator: "\n").count
    }

    /// Builds each builder has run so far: Nix keeps one log per build in the store.
    func buildCounts() -> [Int] {
        fleet.builders.map { b in
            let logs = URL(fileURLWithPath: b.storeRoot).appendingPathComponent("nix/var/log/nix/drvs")
            guard let e = FileManager.default.enumerator(at: logs, includingPropertiesForKeys: nil) else { return 0 }
            return e.reduce(0) { n, item in n + (((item as? URL)?.pathExtension == "bz2") ? 1 : 0) }
        }
    }

    /// Runs `command` in the client environment (killed after `timeout` seconds); its wall time.
    func time(_ command: [String], timeout: Int) throws -> (seconds: Double, output: TestSupport.Output) {
        let start = ContinuousClock.now
        let out = try TestSupport.run(["timeout", "\(timeout)"] + command, environment: environment, check: false)
        let seconds = Bench.seconds(ContinuousClock.now - start)
        if out.status == 124 { throw BenchFailure("timed out after \(timeout) s: \(command.prefix(4).joined(separator: " ")) ...") }
        guard out.status == 0 else {
            throw BenchFailure("\(command.prefix(4).joined(separator: " ")) ... exited \(out.status): \(out.stderr.suffix(2000))")
        }
        return (seconds, out)
    }
}
