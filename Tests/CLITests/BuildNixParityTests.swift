import Foundation
import Testing
import TestSupport

/// `nix-bridge build` and real `nix-build -j0 --builders` on the same fleet print the same
/// log (store hashes and the derivations' tag aside), and make the same choices: the input on
/// builder1, the `big-parallel` job on builder2 with the input uploaded first.
@Suite(.serialized, .tags(.realNix, .realSSHD, .builtCLI), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && CLI.isBuilt, "needs nix (nix-bin), sshd, root and a built nix-bridge"))
struct BuildNixParityTests {
    static func expression(_ f: Fleet, tag: String) -> String {
        let dep = f.expression(name: "pdep-\(tag)", script: "echo pdep > $out")
        let top = f.expression(name: "ptop-\(tag)", script: "echo top log; read l < ${dep}; echo $l top > $out",
                               features: ["big-parallel"])
        return "let dep = \(dep); in \(top)"
    }

    /// Store hashes and the tag replaced, so two runs of the same shapes compare; lists
    /// ("  /nix/store/...", sorted by hash) are sorted again once the hashes are gone.
    static func normalized(_ text: String, tag: String) -> [String] {
        let noHash = text.replacingOccurrences(of: "/nix/store/[0-9a-z]{32}-", with: "/nix/store/HASH-",
                                               options: .regularExpression)
        var out: [String] = [], block: [String] = []
        for line in noHash.replacingOccurrences(of: tag, with: "TAG").split(separator: "\n").map(String.init) {
            if line.hasPrefix("  ") { block.append(line); continue }
            out += block.sorted()
            block = []
            out.append(line)
        }
        return out + block.sorted()
    }

    @Test("same log lines as nix-build -j0 with the same builders")
    func sameLogAsNixBuild() throws {
        let f = try Fleet(features: [[], ["big-parallel"]], label: "nb-build-parity")
        defer { f.stop() }
        let env = ["NIX_SSHOPTS": f.nixSSHOpts, "NIX_CONF_DIR": f.work.path,
                   "NIX_USER_CONF_FILES": f.work.path + "/none.conf",
                   "XDG_CACHE_HOME": f.work.path + "/xdg", "NIX_BRIDGE_STATE_DIR": f.work.path + "/state"]
        let nixTag = "n" + UUID().uuidString.prefix(8).lowercased()
        let ourTag = "b" + UUID().uuidString.prefix(8).lowercased()
        let nixFile = f.work.appendingPathComponent("nix.nix").path
        let ourFile = f.work.appendingPathComponent("ours.nix").path
        try Self.expression(f, tag: nixTag).write(toFile: nixFile, atomically: true, encoding: .utf8)
        try Self.expression(f, tag: ourTag).write(toFile: ourFile, atomically: true, encoding: .utf8)

        // Nix 2.8's hook reads an `@file` machines list by absolute path only.
        let nix = try TestSupport.run(["nix-build", nixFile, "--store", f.work.path + "/nixroot", "-j0", "--no-out-link",
                                       "--builders", "@" + f.machinesFile, "--option", "substituters", ""],
                                      environment: env, check: false)
        #expect(nix.status == 0, "\(nix.stderr)")
        guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        let ours = try TestSupport.run([binary, "build", ourFile, "--store", f.work.path + "/ourroot", "-j0",
                                        "--builders", "@" + f.machinesFile, "--option", "trusted-public-keys", f.trustedPublicKeys],
                                       environment: env, check: false)
        #expect(ours.status == 0, "\(ours.stderr)")
        let expected = Self.normalized(nix.stderr, tag: nixTag)
        #expect(expected.contains("building '/nix/store/HASH-ptop-TAG.drv' on 'ssh-ng://builder2'..."))
        #expect(Self.normalized(ours.stderr, tag: ourTag) == expected)
        #expect(Self.normalized(ours.text, tag: ourTag) == Self.normalized(nix.text, tag: nixTag))
    }
}
