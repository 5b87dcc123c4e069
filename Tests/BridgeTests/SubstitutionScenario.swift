import Foundation
import NixCore
import NixSigning
import NixStore
import NixTransport
import TestSupport
@testable import Bridge

/// The set-up the substitution tests share: two real builders holding the same fixture
/// (signed by `builder1-1` and `builder2-1`), an empty chroot store as the destination, and
/// Substituters from the builders into it.
final class SubstitutionScenario: @unchecked Sendable {
    let fleet: Fleet
    var work: URL { fleet.work }
    let destRoot: URL
    let key1, key2: SigningKey
    let fixture: StoreFixture
    let opener: StoreOpener

    init(label: String, fixture: StoreFixture) throws {
        fleet = try Fleet(count: 2, label: "nb-\(label)")
        destRoot = try FixtureStore.scratchDirectory("nb-\(label)-dest")
        key1 = try SigningKey.generate(name: "builder1-1", in: fleet.work)
        key2 = try SigningKey.generate(name: "builder2-1", in: fleet.work)
        self.fixture = fixture
        _ = try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[0].storeRoot), fixture: fixture, signWith: key1)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[1].storeRoot), fixture: fixture, signWith: key2)
        var o = StoreOpener()
        o.sshConfig = try SSHConfig.load(path: fleet.sshConfig)
        opener = o
    }

    /// Stops the sshds and removes the temporary directories.
    func stop() {
        fleet.stop()
        try? FileManager.default.removeItem(at: work)
        try? FileManager.default.removeItem(at: destRoot)
    }

    var destURI: String { "local?root=\(destRoot.path)" }

    /// A Substituter from the given builders (0-based), trusting `trusted` (default: both keys).
    func substituter(builders: [Int] = [0, 1], trusted: [SigningKey]? = nil) throws -> Substituter {
        let sources = try builders.map { try opener.store(try StoreURI(parsing: fleet.builders[$0].storeURI)) }
        let keys = try TrustedKeys(parsing: (trusted ?? [key1, key2]).map(\.publicKey).joined(separator: " "))
        let dest = try opener.store(try StoreURI(parsing: destURI))
        return Substituter(lookup: Lookup(stores: sources, trustedKeys: keys), destination: dest)
    }

    /// What the destination store says, through the real nix CLI.
    func destInfos() throws -> [[String: Any]] {
        let out = try TestSupport.nix(["path-info", "--json", "--sigs", "--all", "--store", destURI])
        return (try JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]]) ?? []
    }

    /// NARs still staged in the work directory (there should be none after a substitution).
    var stagedFiles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: work.path)) ?? []).filter { $0.hasPrefix("nix-bridge-nar-") }
    }
}
