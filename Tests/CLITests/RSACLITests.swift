import Foundation
import TestSupport
import Testing

/// `nix-bridge ping` with an RSA key and libssh2 1.11 loaded through LD_LIBRARY_PATH
/// (NIX_BRIDGE_LIBSSH2_DIR: a folder holding only that libssh2.so.1).
@Suite("RSA keys with libssh2 1.11", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"),
       .enabled(if: ProcessInfo.processInfo.environment["NIX_BRIDGE_LIBSSH2_DIR"] != nil,
                "set NIX_BRIDGE_LIBSSH2_DIR to a folder holding libssh2.so.1 from libssh2 >= 1.11"))
final class RSACLITests {
    let env: Fleet
    init() throws { env = try Fleet(count: 1, label: "nb-cli-fleet") }

    @Test func rsaKeyLogsInWithLibssh2_1_11() throws {
        let dir = ProcessInfo.processInfo.environment["NIX_BRIDGE_LIBSSH2_DIR"]!
        let key = env.work.appendingPathComponent("client_rsa").path
        try TestSupport.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", key])
        let authorized = env.directory.appendingPathComponent("builder1/authorized_keys").path
        let old = try String(contentsOfFile: authorized, encoding: .utf8)
        try (old + String(contentsOfFile: key + ".pub", encoding: .utf8)).write(toFile: authorized, atomically: true, encoding: .utf8)
        guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        let store = "ssh-ng://builder1?ssh-key=\(key)"
        let new = try TestSupport.run([binary, "ping", "-v", "--store", store],
                                      environment: env.environment.merging(["LD_LIBRARY_PATH": dir]) { $1 }, check: false)
        #expect(new.status == 0, "\(new.stderr)")
        #expect(new.text.contains("transport libssh2 1.1"), "\(new.text)")
        #expect(!new.text.contains("transport libssh2 1.10"))
        #expect(new.text.contains("Version: 2.8.0"))
        // The system's libssh2 1.10 fails with the fix in the message.
        let old110 = try env.bridge(["ping", "--store", store])
        if old110.status != 0 {
            #expect(old110.stderr.contains("can sign RSA keys only with SHA-1"), "\(old110.stderr)")
        }
    }
}
