import Foundation
import NixCore
import TestSupport
import Testing

/// The fleet behind a multi-user Nix install, set up as Docs/Setup.md says: a root
/// `nix-daemon` on its own socket and store with `max-jobs = 0`, the fleet as `builders` and
/// `ssh-ng://localhost?remote-program=nix-bridge` as its only substituter, `nix-bridge serve`
/// on the default `bridge-socket` beside the daemon's socket, and a user outside
/// `trusted-users` running `nix-build` and `nix build` through the daemon.
@Suite("a nix-daemon with the bridge as substituter, used by a plain user", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI),
       .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && CLI.isBuilt, "needs nix (nix-bin), sshd, root and a built nix-bridge"),
       .enabled(if: DaemonFleet.user != nil || TestSupport.peersRequired, "needs the user nixbridge-user (scripts/bootstrap adds it)"))
struct DaemonSubstituterTests {
    @Test("Nix 2.8's daemon: held outputs and their dependencies are fetched, a miss is built remotely")
    func nix28() throws {
        try check(root: nil)
    }

    @Test("Nix 2.26's daemon and clients (Debian 13 root), the same",
          .enabled(if: NixVersions.nix226Root != nil || NixVersions.nix226Required,
                   Comment(rawValue: NixVersions.nix226Unavailable ?? "")))
    func nix226() throws {
        let root = try #require(NixVersions.nix226Root, Comment(rawValue: NixVersions.nix226Unavailable ?? ""))
        try check(root: root)
    }

    func check(root: String?) throws {
        let s = try DaemonFleet(binary: try #require(CLI.binary), root: root)
        defer { s.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let f = s.fleet
        let dep = f.expression(name: "dep-\(tag)", script: "echo dep-\(tag) > $out")
        let top = f.expression(name: "top-\(tag)", script: "read l < ${dep}; echo \"$l top ${dep}\" > $out")
        let other = f.expression(name: "other-\(tag)", script: "echo other-\(tag) > $out")
        let miss = f.expression(name: "miss-\(tag)", script: "read l < ${dep}; echo \"$l miss ${dep}\" > $out")
        let held = "let dep = \(dep); in \(top)"
        let topOut = try f.buildOnBuilder(1, expression: held)
        let otherOut = try f.buildOnBuilder(2, expression: other)
        let depOut = try f.buildOnBuilder(1, expression: dep)
        let builds = f.buildCount(1) + f.buildCount(2)

        // nix-build: the output builder1 holds, and the dependency it refers to, come from the fleet.
        let built = try s.asUser(["nix-build", "--no-out-link", try s.file("held.nix", held)])
        #expect(built.status == 0, "\(built.stderr)\n\(s.logs)")
        #expect(built.trimmed == topOut)
        #expect(s.daemonHas(topOut) && s.daemonHas(depOut))
        #expect(try s.daemonSigs(topOut).contains("builder1-1:"))
        #expect(try s.daemonSigs(depOut).contains("builder1-1:"))
        // nix build (the new CLI): builder2's output.
        let newCLI = try s.asUser(["nix", "--extra-experimental-features", "nix-command", "build", "--no-link",
                                   "-f", try s.file("other.nix", other)])
        #expect(newCLI.status == 0, "\(newCLI.stderr)\n\(s.logs)")
        #expect(s.daemonHas(otherOut))
        #expect(try s.daemonSigs(otherOut).contains("builder2-1:"))
        #expect(f.buildCount(1) + f.buildCount(2) == builds, "nothing was built")
        #expect(s.service.isRunning)
        #expect(s.serviceClients > 0, "the daemon's substitutions went through the service: \(s.logs)")

        // A miss: built by a builder (the daemon builds nothing itself), signed by it.
        let missed = try s.asUser(["nix-build", "--no-out-link", try s.file("miss.nix", "let dep = \(dep); in \(miss)")])
        #expect(missed.status == 0, "\(missed.stderr)\n\(s.logs)")
        let missOut = missed.trimmed
        #expect(missOut.hasSuffix("-miss-\(tag)"))
        #expect(f.buildCount(1) + f.buildCount(2) == builds + 1)
        #expect(s.daemonHas(missOut))
        #expect(try s.daemonSigs(missOut).contains(f.builderHas(1, missOut) ? "builder1-1:" : "builder2-1:"))

        // The user is not trusted: Nix 2.26 says so (protocol 1.35's trusted flag); Nix 2.8's
        // daemon refuses what only a trusted user may do. (2.26's daemon takes AddSignatures
        // from an untrusted user.)
        if root != nil {
            let info = try s.asUser(["nix", "--extra-experimental-features", "nix-command", "store", "info"])
            #expect((info.text + info.stderr).contains("Trusted: 0"), "\(info.text)\(info.stderr)")
        } else {
            let sign = try s.asUser(["nix", "--extra-experimental-features", "nix-command", "store", "sign",
                                     "--key-file", s.userKey, topOut])
            #expect(sign.status != 0 && sign.stderr.contains("you are not privileged"), "\(sign.stderr)")
        }
    }
}
