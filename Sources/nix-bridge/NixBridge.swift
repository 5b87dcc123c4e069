import ArgumentParser
import Glibc

/// The `nix-bridge` command line: only wiring and presentation; the work is in the
/// library targets.
@main
struct NixBridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nix-bridge",
        abstract: "Make a fleet of Nix remote builders act as one verified binary cache.",
        version: "0.1.0",
        subcommands: [Ping.self, PathInfoCommand.self, LookupCommand.self, SubstituteCommand.self, BuildCommand.self, ExplainCommand.self, StatusCommand.self, CheckCommand.self, ServeCommand.self, CacheCommand.self, KeyCommand.self, StdioCommand.self],
        // `nix-bridge --stdio ...`, as Nix runs its remote program: no subcommand name.
        defaultSubcommand: StdioCommand.self
    )

    /// ArgumentParser's entry point, with errors in Nix's form: a usage error is
    /// `error: ...` and a hint, a failure while running is `error: ...`; both exit with
    /// status 1 (ArgumentParser's own form is `Error: ...` and status 64). A command that
    /// has said why it failed throws an `ExitCode`.
    static func main() async {
        var command: any ParsableCommand
        do {
            command = try PathList.parse(NixOptions.joiningOptionPairs(Array(CommandLine.arguments.dropFirst())), as: self)
        } catch {
            guard exitCode(for: error) != .success else { exit(withError: error) } // --help, --version
            printError("error: \(message(for: error))")
            printError("Try 'nix-bridge --help' for more information.")
            Glibc.exit(1)
        }
        do {
            if let interruptible = command as? any InterruptibleCommand {
                try await Interruption.run(interruptible)
            } else if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch {
            guard exitCode(for: error) != .success else { exit(withError: error) } // a help request
            printError("error: \(error)")
            Glibc.exit(1)
        }
    }
}
