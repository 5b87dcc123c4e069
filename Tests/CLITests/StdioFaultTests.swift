import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge --stdio` for the real Nix 2.8 client while a builder is down: a path the
/// fleet cannot answer for is an error naming the builder, not "not valid" (which Nix would
/// take as the path's absence).
@Suite("nix-bridge --stdio with a builder down", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class StdioFaultTests {
    let f: StdioScenario

    init() throws { f = try StdioScenario() }

    @Test func aBuilderThatCannotBeAskedIsAnErrorForNix() throws {
        f.env.stop(builder: 2)
        // Held by builder 2 only.
        let out = try f.env.nix(["path-info", "--store", f.localURI(), f.root], check: false)
        #expect(out.status != 0)
        #expect(out.stderr.contains("ssh-ng://builder2"), "\(out.stderr)")
        #expect(!out.stderr.contains("is not valid"), "\(out.stderr)")
        // Held by builder 1: served as before.
        let other = StoreDirectory.default.print(f.onBuilder1.paths[0])
        let served = try f.env.nix(["path-info", "--store", f.localURI(), other], check: false)
        #expect(served.status == 0, "\(served.stderr)")
        #expect(served.text == other + "\n")
    }
}
