import Testing
@testable import NixTransport

/// The command line the openssh transport runs, beside what Nix's libstore runs
/// (`ssh HOST -x`, NIX_SSHOPTS, `-i`, a pinned-key known_hosts, the "started" LocalCommand).
@Suite struct OpenSSHClientTests {
    @Test func argumentsAsNixBuildsThem() throws {
        let c = OpenSSHClient(host: "root@builder1", port: 2222, identityFile: "/k/id", pinnedHostKey: nil,
                              sshOpts: "-F '/my dir/config' -o \"ServerAliveInterval 5\"")
        #expect(try c.arguments(command: "nix-daemon --stdio", knownHostsFile: "/tmp/x/host-key") == [
            "ssh", "root@builder1", "-x", "-F", "/my dir/config", "-o", "ServerAliveInterval 5", "-p", "2222",
            "-i", "/k/id", "-oUserKnownHostsFile=/tmp/x/host-key", "-oPermitLocalCommand=yes",
            "-oLocalCommand=echo started", "nix-daemon --stdio",
        ])
        #expect(try OpenSSHClient(host: "b", sshOpts: "").arguments(command: "c", knownHostsFile: nil)
            == ["ssh", "b", "-x", "-oPermitLocalCommand=yes", "-oLocalCommand=echo started", "c"])
    }

    @Test func shellWordsSplitAsAShellDoes() throws {
        #expect(try ShellWords.split("") == [])
        #expect(try ShellWords.split("  a\tb  ") == ["a", "b"])
        #expect(try ShellWords.split(#"a\ b 'c d' "e \"f\"" g''h"#) == ["a b", "c d", #"e "f""#, "gh"])
        #expect(try ShellWords.split("''") == [""])
        #expect(throws: ShellWords.Unterminated.self) { try ShellWords.split("'open") }
        #expect(throws: ShellWords.Unterminated.self) { try ShellWords.split("trailing\\") }
    }

    @Test func transportSettingParses() throws {
        #expect(try SSHTransport(parsing: "openssh") == .openssh)
        #expect(throws: TransportError.self) { try SSHTransport(parsing: "OpenSSH") }
        let plain = SSHConfig().resolve(host: "h")
        #expect(SSHTransport.auto.choice(for: plain).client == .libssh2)
        #expect(SSHTransport.openssh.choice(for: plain).client == .openssh)
    }
}
