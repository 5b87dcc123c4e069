import Foundation
import TestSupport

/// A real SSH fleet plus the environment a Nix user would run `nix-bridge` and `nix` in:
/// `NIX_SSHOPTS="-F <ssh_config>"`, and an empty nix.conf so the machine's own
/// /etc/nix/nix.conf (substituters, builders...) does not leak in.
final class FleetCLI: @unchecked Sendable {
    let fleet: SSHFleet
    let work: URL
    let environment: [String: String]

    init(builders: Int = 2, roots: [String?] = []) throws {
        fleet = try SSHFleet(count: builders, roots: roots)
        work = try TestSupport.temporaryDirectory("nb-cli-fleet")
        let conf = work.appendingPathComponent("nixconf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try Data().write(to: conf.appendingPathComponent("nix.conf"))
        environment = [
            "NIX_SSHOPTS": fleet.nixSSHOpts,
            "NIX_CONF_DIR": conf.path,
            "XDG_CONFIG_HOME": work.appendingPathComponent("xdg").path,
            "NIX_USER_CONF_FILES": conf.appendingPathComponent("nix.conf").path,
        ]
    }

    deinit {
        fleet.stop()
        try? FileManager.default.removeItem(at: work)
    }

    func builder(_ n: Int) -> SSHFleet.Builder { fleet.builders[n - 1] }

    /// `local?root=<builder n's store root>`: the builder's store opened directly.
    func localStore(_ n: Int) -> String { "local?root=\(builder(n).storeRoot)" }

    /// `nix-bridge ARGS` in the fleet's environment (exit status not checked).
    func bridge(_ args: [String], input: Data? = nil) throws -> TestSupport.Output {
        guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        return try TestSupport.run([binary] + args, input: input, environment: environment, check: false)
    }

    /// Real `nix ARGS` (nix-command enabled) in the same environment.
    func nix(_ args: [String], check: Bool = true) throws -> TestSupport.Output {
        try TestSupport.run(["nix", "--extra-experimental-features", "nix-command"] + args,
                            environment: environment, check: check)
    }

    /// Adds a file to builder n's store with `nix-store --add` (a content-addressed path).
    func addFile(_ n: Int, name: String, contents: String) throws -> String {
        let file = work.appendingPathComponent(name)
        try Data(contents.utf8).write(to: file)
        return try TestSupport.run(["nix-store", "--store", localStore(n), "--add", file.path],
                                   environment: environment).trimmed
    }

    /// A file in the work directory.
    func write(_ name: String, _ text: String) throws -> String {
        let url = work.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }
}
