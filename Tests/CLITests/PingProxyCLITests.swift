import Foundation
import TestSupport
import Testing

/// `nix-bridge ping -v` and `path-info` for a builder reached only through a jump host, with
/// the ssh_config spread over Match blocks and an Include, as users write them.
@Suite("nix-bridge through ProxyJump", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class PingProxyCLITests {
    let env: Fleet
    let config: String
    let environment: [String: String]

    init() throws {
        env = try Fleet(count: 2, label: "nb-cli-fleet")
        let fleet = env
        config = try env.write("proxy_config", """
        Host inner
          HostName 127.0.0.1
          Port \(fleet.builders[1].port)
          ProxyJump builder1
        Match originalhost inner
          HostKeyAlias builder2
          User root
          IdentityFile \(fleet.clientKey)
          IdentitiesOnly yes
          UserKnownHostsFile \(fleet.knownHosts)
          StrictHostKeyChecking yes
          ControlMaster auto
        Match all
          Include \(fleet.sshConfig)

        """)
        environment = env.environment.merging(["NIX_SSHOPTS": "-F \(config)"]) { $1 }
    }

    func bridge(_ args: [String]) throws -> TestSupport.Output {
        guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        return try TestSupport.run([binary] + args, environment: environment, check: false)
    }

    @Test func pingVerboseShowsEffectiveSettingsPerHop() throws {
        let out = try bridge(["ping", "-v", "--store", "ssh-ng://inner"])
        #expect(out.status == 0, "\(out.stderr)")
        let lines = out.text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines.contains("Version: 2.8.0"))
        #expect(lines.contains("SSH settings for ssh-ng://inner:"))
        #expect(lines.contains("proxyjump builder1 \(config):4"))
        #expect(lines.contains("hostkeyalias builder2 \(config):6"))
        #expect(lines.contains("controlmaster auto (no effect with libssh2) \(config):12"))
        #expect(lines.contains("via ProxyJump host builder1:"))
        // The jump host's settings come from the included file.
        #expect(lines.contains("port \(env.builders[0].port) \(env.sshConfig):3"))
        // Real Nix, through OpenSSH's own ProxyJump, reaches the same store.
        let nix = try TestSupport.run(["nix", "--extra-experimental-features", "nix-command", "store", "ping",
                                       "--store", "ssh-ng://inner"], environment: environment, check: false)
        #expect(nix.status == 0, "\(nix.stderr)")
    }

    @Test func pathInfoThroughTheJumpMatchesNix() throws {
        let path = try env.addFile(2, name: "behind-jump.txt", contents: "reached through a jump host\n")
        let ours = try bridge(["path-info", "--store", "ssh-ng://inner", path])
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(ours.trimmed == path)
        let nix = try TestSupport.run(["nix", "--extra-experimental-features", "nix-command", "path-info",
                                       "--store", "ssh-ng://inner", path], environment: environment, check: false)
        #expect(nix.trimmed == ours.trimmed, "\(nix.stderr)")
    }
}
