import Foundation
import TestSupport
import Testing

/// `nix-bridge ping` against real sshd + nix-daemon (Nix 2.8), as a user runs it.
@Suite("nix-bridge ping over ssh-ng", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class PingCLITests {
    let env: Fleet

    init() throws { env = try Fleet(count: 2, label: "nb-cli-fleet") }

    @Test func pingOneStore() throws {
        let out = try env.bridge(["ping", "--store", "ssh-ng://builder1"])
        #expect(out.status == 0, "\(out.stderr)")
        let lines = out.text.split(separator: "\n").map(String.init)
        #expect(lines.contains("Store URL: ssh-ng://builder1"))
        #expect(lines.contains("Version: 2.8.0"))
        #expect(lines.contains("Protocol: 1.34"))
        // `nix-daemon --stdio` trusts its standard streams.
        #expect(lines.contains("Trusted: 1"))
        #expect(lines.contains { $0.hasPrefix("Round trip: ") && $0.hasSuffix(" ms") })
        // Nix itself agrees the store answers.
        let nix = try env.nix(["store", "ping", "--store", "ssh-ng://builder1"], check: false)
        #expect(nix.status == 0, "\(nix.stderr)")
        // Nix 2.8 prints its report on stderr.
        #expect((nix.text + nix.stderr).contains("Store URL: ssh-ng://builder1"))
    }

    @Test func pingJSON() throws {
        let out = try env.bridge(["ping", "--json", "--store", "ssh-ng://builder1", "--store", "ssh-ng://builder2"])
        #expect(out.status == 0, "\(out.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]])
        #expect(list.map { $0["url"] as? String } == ["ssh-ng://builder1", "ssh-ng://builder2"])
        for o in list {
            #expect(o["ok"] as? Bool == true)
            #expect(o["version"] as? String == "2.8.0")
            #expect(o["protocol"] as? String == "1.34")
            #expect(o["trusted"] as? Bool == true)
            #expect((o["roundTripSeconds"] as? Double ?? -1) >= 0)
        }
    }

    /// No --store: every configured machine, from --builders or a machines file.
    @Test func pingConfiguredBuilders() throws {
        let inline = try env.bridge(["ping", "--builders", "ssh-ng://builder1 x86_64-linux ; ssh-ng://builder2 x86_64-linux"])
        #expect(inline.status == 0, "\(inline.stderr)")
        #expect(inline.text.contains("Store URL: ssh-ng://builder1\n"))
        #expect(inline.text.contains("Store URL: ssh-ng://builder2\n"))
        #expect(inline.text.components(separatedBy: "Version: 2.8.0").count == 3)

        let file = try env.write("machines", """
            # the fleet, pinned
            ssh-ng://builder1 x86_64-linux - 1 1 - - \(env.builder(1).hostKeyBase64)
            ssh-ng://builder2 x86_64-linux - 1 1 - - \(env.builder(2).hostKeyBase64)

            """)
        let fromFile = try env.bridge(["ping", "--json", "--builders", "@\(file)"])
        #expect(fromFile.status == 0, "\(fromFile.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: fromFile.stdout) as? [[String: Any]])
        #expect(list.map { $0["url"] as? String } == ["ssh-ng://builder1", "ssh-ng://builder2"])
        #expect(list.allSatisfy { $0["ok"] as? Bool == true })
    }

    @Test func noStoreConfigured() throws {
        let out = try env.bridge(["ping"])
        #expect(out.status == 1)
        #expect(out.stderr.contains("no store given and no machines configured"))
    }

    @Test func remoteProgramNotOnPath() throws {
        let out = try env.bridge(["ping", "--store", "ssh-ng://builder1?remote-program=nix-daemon-nowhere"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("nix-daemon-nowhere"), "\(out.stderr)")
        #expect(out.stderr.contains("hint: "))
        #expect(out.stderr.contains("command not found"), "\(out.stderr)")
        #expect(out.stderr.contains("hint: nix-daemon-nowhere is not on the PATH of non-interactive shells"), "\(out.stderr)")
    }

    /// Debian's bash reads ~/.bashrc for commands run by sshd: its output lands in the
    /// protocol stream.
    @Test func shellStartupOutput() throws {
        try Data("echo Welcome\n".utf8).write(to: URL(fileURLWithPath: env.builder(1).home).appendingPathComponent(".bashrc"))
        let out = try env.bridge(["ping", "--store", "ssh-ng://builder1"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("hint: "), "\(out.stderr)")
        #expect(out.stderr.contains("shell start-up files"), "\(out.stderr)")
        #expect(out.stderr.contains("(it printed 'Welcome\\n…')"), "\(out.stderr)")
        // Nix fails too: it is the builder's set-up, not us.
        let nix = try env.nix(["store", "ping", "--store", "ssh-ng://builder1"], check: false)
        #expect(nix.status != 0)
        // builder2 is unaffected.
        #expect(try env.bridge(["ping", "--store", "ssh-ng://builder2"]).status == 0)
    }

    @Test func wrongPinnedHostKey() throws {
        let file = try env.write("machines-wrong", "ssh-ng://builder1 x86_64-linux - 1 1 - - \(env.builder(2).hostKeyBase64)\n")
        let out = try env.bridge(["ping", "--builders", "@\(file)"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("host key"), "\(out.stderr)")
        #expect(out.stderr.contains("hint: the builder's host key differs from the one pinned"), "\(out.stderr)")
    }

    @Test func keyRefused() throws {
        let file = try env.write("machines-stranger", "ssh-ng://builder1 x86_64-linux \(env.strangerKey) 1 1 - - \(env.builder(1).hostKeyBase64)\n")
        let out = try env.bridge(["ping", "--builders", "@\(file)"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("hint: the builder refused our keys"), "\(out.stderr)")
    }

    @Test func legacySSHStore() throws {
        let out = try env.bridge(["ping", "--store", "ssh://builder1"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("not supported yet"), "\(out.stderr)")
        // A machines file's bare host name means ssh:// too, as in Nix.
        let bare = try env.bridge(["ping", "--builders", "builder1 x86_64-linux"])
        #expect(bare.status != 0)
        #expect(bare.stderr.contains("'ssh://builder1'") && bare.stderr.contains("not supported yet"), "\(bare.stderr)")
    }
}
