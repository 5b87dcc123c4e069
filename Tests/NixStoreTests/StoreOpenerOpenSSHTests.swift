import NixCore
import NixTransport
import Testing
@testable import NixStore

/// What the openssh transport adds to the user's ssh command line: the keepalive defaults
/// and a ControlMaster of nix-bridge's, each only where ssh_config says nothing.
@Suite struct StoreOpenerOpenSSHTests {
    @Test func keepalivesAndMasterUnlessSSHConfigSetsThem() throws {
        let config = try SSHConfig.parse("""
            Host mine
              ControlPath /x/%C
              ServerAliveInterval 5
            Host off
              ControlMaster no
            Host quiet
              ServerAliveCountMax 7

            """)
        var opener = StoreOpener(sshConfig: config)
        opener.openSSHMaster = OpenSSHMaster(directory: "/d")
        let mine = opener.openSSHClient(try StoreURI(parsing: "ssh-ng://mine"))
        #expect(mine.master == nil)
        #expect(mine.defaultOptions == ["ServerAliveCountMax=3"])
        #expect(opener.openSSHClient(try StoreURI(parsing: "ssh-ng://off")).master == nil)
        let quiet = opener.openSSHClient(try StoreURI(parsing: "ssh-ng://quiet"))
        #expect(quiet.master == OpenSSHMaster(directory: "/d"))
        #expect(quiet.defaultOptions == ["ServerAliveInterval=15"])
        opener.openSSHMaster = nil
        #expect(opener.openSSHClient(try StoreURI(parsing: "ssh-ng://quiet")).master == nil)
    }
}
