import ArgumentParser

/// `nix-bridge-bench <benchmark>`: each subcommand measures nix-bridge beside real Nix in the
/// same run. (Started by the call at the bottom: `@main` is not allowed in main.swift.)
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nix-bridge-bench",
        abstract: "Benchmarks of nix-bridge against the real Nix tools.",
        subcommands: [NARBench.self, SigningBench.self, CacheBench.self, SSHBench.self, StoreBench.self,
                      LookupBench.self, SubstituteBench.self, SubstituteOne.self, BuildBench.self, ServeBench.self, SlowClientsBench.self,
                      HTTPBench.self, LibSSH2Bench.self, TransportBench.self, ArgsBench.self, SilentBench.self,
                      ServiceBench.self, DaemonBench.self]
    )
}

Bench.main()
