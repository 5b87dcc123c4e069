import ArgumentParser

/// `nix-bridge-bench`: our implementations beside the reference ones, measured in one run.
/// (A file named main.swift cannot carry `@main`, hence the explicit call at the end.)
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nix-bridge-bench",
        abstract: "Benchmarks of nix-bridge beside the libraries and tools it replaces.",
        subcommands: [SigningBench.self]
    )
}

Bench.main()
