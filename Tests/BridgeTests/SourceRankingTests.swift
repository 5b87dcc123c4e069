import Foundation
import NixCore
import NixSigning
import NixStore
import Testing
import TestSupport
@testable import Bridge

/// Which source a path is fetched from: machines by speed factor (higher first, machines
/// file order on ties), then stores that are not machines.
struct SourceRankingTests {
    func store(_ uri: String) throws -> RemoteStore {
        RemoteStore(uri: try StoreURI(parsing: uri)) { () async throws(StoreError) -> DaemonConnection in
            throw StoreError.closed(peer: uri)
        }
    }

    @Test func machinesBySpeedFactorThenSubstituters() throws {
        let uris = ["ssh-ng://b1", "unix:///tmp/sub.sock", "ssh-ng://b2", "ssh-ng://b3", "ssh-ng://b4"]
        let lookup = Lookup(stores: try uris.map(store), trustedKeys: TrustedKeys([]),
                            speedFactors: ["ssh-ng://b1": 1, "ssh-ng://b2": 4, "ssh-ng://b3": 2, "ssh-ng://b4": 4])
        #expect(lookup.ranking.map { uris[$0] } == ["ssh-ng://b2", "ssh-ng://b4", "ssh-ng://b3", "ssh-ng://b1", "unix:///tmp/sub.sock"])
        #expect(Lookup(stores: try uris.map(store), trustedKeys: TrustedKeys([])).ranking == [0, 1, 2, 3, 4],
                "without speed factors the given order stands")
    }

    @Test func speedFactorsComeFromTheMachinesFile() throws {
        let dir = try TestSupport.temporaryDirectory("nb-ranking")
        defer { try? FileManager.default.removeItem(at: dir) }
        let conf = dir.appendingPathComponent("nix.conf")
        try Data().write(to: conf)
        let config = try FleetConfig.load(
            environment: ["NIX_CONF_DIR": dir.path, "NIX_USER_CONF_FILES": conf.path, "HOME": dir.path],
            overrides: [.builders("ssh://builder1 x86_64-linux - 1 1 ; ssh-ng://builder2 x86_64-linux - 1 4")])
        #expect(config.lookupSpeedFactors == ["ssh-ng://builder1": 1, "ssh-ng://builder2": 4])
        #expect(config.lookupStoreURIs().map(\.description) == ["ssh-ng://builder1", "ssh-ng://builder2"])
    }
}
