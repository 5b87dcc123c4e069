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

    /// Through a master of ours: its socket instead of the "started" LocalCommand, defaults
    /// that NIX_SSHOPTS does not set, and no master when NIX_SSHOPTS multiplexes itself.
    @Test func argumentsThroughTheMaster() throws {
        let master = OpenSSHMaster(directory: "/run/u/nix-bridge/ssh")
        let c = OpenSSHClient(host: "b", sshOpts: "-o ServerAliveInterval=5",
                              defaultOptions: ["ServerAliveInterval=15", "ServerAliveCountMax=3"], master: master)
        let socket = try #require(c.controlPath)
        #expect(socket.hasPrefix("/run/u/nix-bridge/ssh/") && socket.count == "/run/u/nix-bridge/ssh/".count + 16)
        #expect(try c.arguments(command: "c", knownHostsFile: nil) == [
            "ssh", "b", "-x", "-o", "ServerAliveInterval=5", "-oServerAliveCountMax=3",
            "-oControlMaster=no", "-oControlPath=" + socket, "c",
        ])
        // Another pinned key, key file or destination: another master.
        var other = c
        other.pinnedHostKey = "c3NoLWVkMjU1MTkgQUFBQQ=="
        #expect(other.controlPath != socket)
        for opts in ["-S /tmp/s", "-M", "-oControlPath=/x/%C", "-o \"ControlMaster no\""] {
            #expect(OpenSSHClient(host: "b", sshOpts: opts, master: master).controlPath == nil, "\(opts)")
        }
    }

    /// The socket path fits sun_path with the 17 bytes ssh adds while binding it.
    @Test func controlDirectoryFitsSunPath() {
        #expect(OpenSSHMaster.defaultDirectory(environment: ["XDG_RUNTIME_DIR": "/run/user/1000"]) == "/run/user/1000/nix-bridge/ssh")
        #expect(OpenSSHMaster.defaultDirectory(environment: ["XDG_RUNTIME_DIR": "", "HOME": "/home/a"]) == "/home/a/.cache/nix-bridge/ssh")
        let long = "/home/" + String(repeating: "x", count: 80)
        let dir = OpenSSHMaster.defaultDirectory(environment: ["HOME": long])
        #expect(dir.hasPrefix("/tmp/nix-bridge-"))
        #expect(OpenSSHMaster(directory: dir).socket(for: "k").utf8.count + 17 < 104)
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
