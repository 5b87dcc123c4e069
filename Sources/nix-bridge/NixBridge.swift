import ArgumentParser

/// The `nix-bridge` command line: only wiring and presentation; the work is in the
/// library targets.
@main
struct NixBridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nix-bridge",
        abstract: "Make a fleet of Nix remote builders act as one verified binary cache.",
        version: "0.1.0",
        subcommands: [KeyCommand.self]
    )
}
