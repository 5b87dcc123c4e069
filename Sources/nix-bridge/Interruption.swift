import ArgumentParser
import Glibc
import NixTransport

/// A command whose work SIGINT, SIGTERM and SIGHUP interrupt as they interrupt Nix.
protocol InterruptibleCommand: AsyncParsableCommand {}

/// Runs an `InterruptibleCommand` in a task of its own. The first signal cancels that task:
/// the command closes its connections (its `nix-daemon --stdio` and `ssh` children are ended
/// and reaped, a remote daemon stops its build, a destination daemon never sees the end of
/// a NAR and registers nothing), and the process ends as Nix does: `error: interrupted by
/// the user`, status 1. A second signal ends it at once, as does the first when the work has
/// not stopped within `grace`.
enum Interruption {
    static let grace: Duration = .seconds(10)

    static func run(_ command: any AsyncParsableCommand) async throws {
        let box = CommandBox(command)
        let work = Task { try await box.run() }
        let signals = InterruptSignals { _ in
            work.cancel()
            Task {
                try? await Task.sleep(for: grace)
                exitInterrupted()
            }
        }
        let result = await work.result
        if signals.wasInterrupted { exitInterrupted() }
        try result.get()
    }

    /// `_exit`, not `exit`: an SSH session thread given up may still be in libssh2 or
    /// libcrypto, whose exit-time clean-up would pull them from under it.
    static func exitInterrupted() -> Never {
        fflush(nil)
        printError("error: interrupted by the user")
        _exit(1)
    }
}

/// The parsed command, handed to the task that runs it.
private final class CommandBox: @unchecked Sendable {
    var command: any AsyncParsableCommand
    init(_ command: any AsyncParsableCommand) { self.command = command }
    func run() async throws { try await command.run() }
}
