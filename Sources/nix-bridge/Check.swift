import ArgumentParser
import Bridge
import Foundation

/// `nix-bridge check`: is every builder set up to be used as a substituter?
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check every builder's set-up as a substituter, step by step (PASS/FAIL with the fix).",
        discussion: """
            The NixOS wiki's "remote builders as substituters" steps, for every configured \
            machine: host key pinned (machines file or known_hosts), the local 'substituters' \
            line, ssh login, nix-daemon on the PATH of a non-interactive shell, trusted user, a \
            signing key in 'secret-key-files' (judged by its recent paths' signatures; SKIP when \
            it holds no input-addressed path), how many of its recent paths are unsigned, its \
            key in the local 'trusted-public-keys'. Exits 0 when no step failed, 1 otherwise.
            """
    )

    /// As 'status' takes them; the narinfo cache is not read.
    @OptionGroup var fleet: FleetStatusOptions

    func run() async throws {
        let config = try fleet.load()
        let report = await fleet.prober(config, readsCache: false).gather()
        let results = SetupCheck.check(report, settings: config.settings, knownHosts: config.knownHostsEntries)
        for r in results {
            print(r.storeUri)
            for s in r.steps {
                print("  \(s.outcome.rawValue)  \(s.name): \(s.detail)")
                if let fix = s.fix, s.failed { print("        fix: \(fix)") }
            }
        }
        let failed = results.reduce(0) { $0 + $1.steps.filter(\.failed).count }
        print(failed == 0 ? "all steps passed" : "\(failed) step\(failed == 1 ? "" : "s") failed")
        if failed > 0 { throw ExitCode.failure }
    }
}
