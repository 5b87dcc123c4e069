import Foundation
import TestSupport
import Testing

/// The openssh transport (`ssh-transport = openssh`, or `auto` for a host whose ssh_config
/// needs the real client) against real sshd + nix-daemon: the user's `ssh` run as Nix runs
/// it, an OpenSSH user certificate that libssh2 cannot present, and pinned host keys.
@Suite("ssh-transport = openssh", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI, .hostTools),
       .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && CLI.isBuilt && TestSupport.has("ssh"),
                "needs nix, sshd, ssh, root and a built nix-bridge"))
final class OpenSSHTransportTests {
    let ca: URL
    let env: Fleet

    init() throws {
        ca = try TestSupport.temporaryDirectory("nb-openssh-ca")
        try TestSupport.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-ca", "-f", ca.path + "/ca"])
        env = try Fleet(count: 1, label: "nb-openssh", extraSSHDConfig: ["TrustedUserCAKeys \(ca.path)/ca.pub"])
    }

    deinit { try? FileManager.default.removeItem(at: ca) }

    /// What both transports print for one path of builder 1.
    @Test func pathInfoAndPingThroughTheUsersSSH() throws {
        let path = try env.addFile(1, name: "openssh-file", contents: "through OpenSSH\n")
        let viaLibssh2 = try env.bridge(["path-info", "--json", "--store", "ssh-ng://builder1?ssh-transport=libssh2", path])
        let viaOpenSSH = try env.bridge(["path-info", "--json", "--store", "ssh-ng://builder1?ssh-transport=openssh", path])
        #expect(viaLibssh2.status == 0, "\(viaLibssh2.stderr)")
        #expect(viaOpenSSH.status == 0, "\(viaOpenSSH.stderr)")
        #expect(viaOpenSSH.text == viaLibssh2.text)
        #expect(viaOpenSSH.text.contains(path))

        // The setting, and ping saying which client it used.
        let ping = try env.bridge(["ping", "-v", "--option", "ssh-transport", "openssh", "--store", "ssh-ng://builder1"])
        #expect(ping.status == 0, "\(ping.stderr)")
        #expect(ping.text.contains("transport openssh (ssh-transport = openssh)"), "\(ping.text)")
        #expect(ping.text.contains("Version: 2.8.0"))
        let auto = try env.bridge(["ping", "-v", "--store", "ssh-ng://builder1"])
        #expect(auto.text.contains("transport libssh2"), "\(auto.text)")

        let bad = try env.bridge(["ping", "--store", "ssh-ng://builder1?ssh-transport=putty"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("'putty' is not one of libssh2, openssh, auto"), "\(bad.stderr)")
    }

    /// A key the builder's sshd accepts only through a certificate signed by its CA: `auto`
    /// picks OpenSSH for it (CertificateFile), libssh2 cannot log in.
    @Test func userCertificateNeedsOpenSSH() throws {
        let key = env.directory.appendingPathComponent("cert_ed25519").path
        try TestSupport.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "certified", "-f", key])
        try TestSupport.run(["ssh-keygen", "-q", "-s", ca.path + "/ca", "-I", "nix-bridge-test", "-n", "root",
                             "-V", "-5m:+1h", key + ".pub"])
        #expect(FileManager.default.fileExists(atPath: key + "-cert.pub"))
        let b = env.builder(1)
        let config = try env.write("ssh_config_cert", """
            Host certified
              HostName 127.0.0.1
              Port \(b.port)
              User root
              IdentityFile \(key)
              CertificateFile \(key)-cert.pub
              IdentitiesOnly yes
              HostKeyAlias \(b.name)
              UserKnownHostsFile \(env.knownHosts)
              StrictHostKeyChecking yes
              BatchMode yes
              LogLevel ERROR

            """)
        let environment = env.environment.merging(["NIX_SSHOPTS": "-F \(config)"]) { $1 }
        let binary = try #require(CLI.binary)
        let auto = try TestSupport.run([binary, "ping", "-v", "--store", "ssh-ng://certified"], environment: environment, check: false)
        #expect(auto.status == 0, "\(auto.stderr)")
        #expect(auto.text.contains("transport openssh (certificatefile"), "\(auto.text)")
        #expect(auto.text.contains("Version: 2.8.0"))
        let libssh2 = try TestSupport.run([binary, "ping", "--store", "ssh-ng://certified?ssh-transport=libssh2"],
                                          environment: environment, check: false)
        #expect(libssh2.status != 0, "libssh2 logged in without presenting the certificate")
        // Real Nix with the same ssh_config reaches it too.
        let nix = try TestSupport.run(["nix", "--extra-experimental-features", "nix-command", "store", "ping",
                                       "--store", "ssh-ng://certified"], environment: environment, check: false)
        #expect(nix.status == 0, "\(nix.stderr)")
    }

    /// The machines file's pinned host key is what ssh checks, through a private known_hosts:
    /// the right key logs in with an empty user known_hosts, a wrong one is refused by ssh.
    @Test func pinnedHostKeyThroughOpenSSH() throws {
        let pinned = try PinnedHostPing(env)
        let good = try pinned.ping(pinned.right)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.text.contains("Version: 2.8.0"))
        let refused = try pinned.ping(pinned.wrong)
        #expect(PinnedHostPing.isMismatch(refused), "\(refused.stderr)")
        // No private known_hosts is left behind.
        let left = (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
        #expect(!left.contains { $0.hasPrefix("nix-bridge-ssh-") })
    }
}
