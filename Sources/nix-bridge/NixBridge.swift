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
        subcommands: [Ping.self, PathInfoCommand.self, LookupCommand.self, SubstituteCommand.self, BuildCommand.self, ExplainCommand.self, ServeCommand.self, CacheCommand.self, KeyCommand.self]
    )

    /// Listed for --help; a command line with `--stdio` is parsed by `StdioCommand` (see main).
    @Flag(help: "Serve the fleet's trusted paths as a Nix store on stdin/stdout (the worker protocol), for ssh-ng://HOST?remote-program=nix-bridge; also takes --option and --builders.")
    var stdio = false

    func run() async throws {
        throw CleanExit.helpRequest(self)
    }

    /// ArgumentParser's entry point, except that usage errors read like Nix's
    /// (`error: ...`, a hint, exit status 1) rather than `Error: ...` and status 64.
    static func main() async {
        // `--stdio` takes options the subcommands also have (--store, --option): parsed on
        // its own so that the root does not take them from the subcommands.
        if CommandLine.arguments.contains("--stdio") {
            await StdioCommand.main(NixOptions.joiningOptionPairs(Array(CommandLine.arguments.dropFirst())))
            return
        }
        do {
            var command = try parseAsRoot(NixOptions.joiningOptionPairs(Array(CommandLine.arguments.dropFirst())))
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if let code = error as? ExitCode { Glibc.exit(code.rawValue) }
            guard exitCode(for: error) != .success else { exit(withError: error) } // --help, --version
            printError("error: \(message(for: error))")
            printError("Try 'nix-bridge --help' for more information.")
            Glibc.exit(1)
        }
    }
}
