import Foundation
import NixCore
import NixStore
import NixTransport
import Testing
import TestSupport

/// QueryAllValidPaths (op 23) over ssh-ng against Nix 2.8, beside `nix path-info --all`.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class AllValidPathsTests {
    let fleet: Fleet

    init() throws { fleet = try Fleet(count: 1) }

    deinit { fleet.stop() }

    func store() throws -> RemoteStore {
        var o = StoreOpener()
        o.sshConfig = try SSHConfig.load(path: fleet.sshConfig)
        return try o.store(try StoreURI(parsing: fleet.builders[0].storeURI))
    }

    @Test func emptyStoreThenFixture() async throws {
        let s = try store()
        #expect(try await s.queryAllValidPaths().isEmpty)
        await s.close()

        let fixture = try StoreFixture.make(count: 40, seed: 3)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[0].storeRoot), fixture: fixture)
        let s2 = try store()
        let all = try await s2.queryAllValidPaths()
        #expect(all == Set(fixture.paths))
        let nix = try TestSupport.nix(["path-info", "--all", "--store", "local?root=\(fleet.builders[0].storeRoot)"])
        let listed = try nix.text.split(separator: "\n").map { try StoreDirectory.default.parse(String($0)) }
        #expect(all == Set(listed))
        // The daemon's answer has everything a fingerprint needs.
        let p = try #require(fixture.paths.last)
        let info = try #require(try await s2.queryPathInfo(p))
        #expect(info.path == p)
        #expect(try info.fingerprint().hasPrefix("1;\(StoreDirectory.default.print(p));sha256:"))
        await s2.close()
    }
}
