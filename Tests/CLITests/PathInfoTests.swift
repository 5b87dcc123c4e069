import Foundation
import NixCore
import Testing
import TestSupport

/// `nix-bridge path-info` prints what the real `nix path-info` prints, line for line, in the
/// same order (Nix prints references before the paths referring to them).
@Suite(.tags(.realNix, .builtCLI), .enabled(if: TestSupport.hasNix && CLI.isBuilt, "needs the nix CLI (nix-bin) and a built nix-bridge"),
       .timeLimit(.minutes(1)))
struct PathInfoTests {
    @Test("text output with -r and --sigs is the same as nix path-info's, order included")
    func sameLinesAsNix() throws {
        let root = try FixtureStore.scratchDirectory("nb-cli-path-info")
        defer { try? FileManager.default.removeItem(at: root) }
        let key = try SigningKey.generate(name: "cli-test-1", in: root)
        let fixture = try StoreFixture.make(count: 60, seed: 11)
        let store = try FixtureStore.create(at: root.appendingPathComponent("store"), fixture: fixture, signWith: key)
        let uri = try #require(store.storeURI)
        // Several roots, given out of order, so both the walk and the sorting show.
        let roots = Array(fixture.roots.map { StoreDirectory.default.print($0) }.reversed())
        #expect(roots.count > 1)
        for args in [["-r", "--sigs"], ["-r"], ["--sigs"]] {
            let nix = try TestSupport.nix(["path-info", "--store", uri] + args + roots)
            let ours = try CLI.run(["path-info", "--store", uri] + args + roots)
            #expect(ours.status == 0, "\(ours.stderr)")
            #expect(ours.text == nix.text, "nix-bridge path-info \(args.joined(separator: " "))")
        }
        let all = try TestSupport.nix(["path-info", "--store", uri, "-r"] + roots)
        #expect(all.text.split(separator: "\n").count == fixture.items.count)
    }
}
