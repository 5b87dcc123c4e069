import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore
import NixTransport
import Testing
import TestSupport
@testable import Bridge

/// The lookup layer against two real builders (sshd + nix-daemon, Nix 2.8) with their own
/// keys: signed on one, on both, unsigned, signed by an untrusted key, missing.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class LookupTests {
    let fleet: Fleet
    let work: URL
    let key1, key2, stranger: SigningKey
    let onlyB1, onBoth, unsigned, untrusted: StoreFixture
    var opener = StoreOpener()

    init() throws {
        fleet = try Fleet(count: 2)
        work = try TestSupport.temporaryDirectory("nb-lookup")
        key1 = try SigningKey.generate(name: "builder1-1", in: work)
        key2 = try SigningKey.generate(name: "builder2-1", in: work)
        stranger = try SigningKey.generate(name: "stranger-1", in: work)
        onlyB1 = try StoreFixture.make(count: 20, seed: 11, namePrefix: "only1")
        onBoth = try StoreFixture.make(count: 20, seed: 12, namePrefix: "both")
        unsigned = try StoreFixture.make(count: 5, seed: 13, namePrefix: "unsigned")
        untrusted = try StoreFixture.make(count: 5, seed: 14, namePrefix: "untrusted")
        let root1 = URL(fileURLWithPath: fleet.builders[0].storeRoot)
        let root2 = URL(fileURLWithPath: fleet.builders[1].storeRoot)
        var b1 = try FixtureStore.create(at: root1, fixture: onlyB1, signWith: key1)
        try b1.add(onBoth)
        let b2 = try FixtureStore.create(at: root2, fixture: onBoth, signWith: key2)
        _ = try b2.importFixture(unsigned)
        var b2stranger = FixtureStore(location: .chroot(root: root2), key: stranger, infos: b2.infos)
        try b2stranger.add(untrusted)
        opener.sshConfig = try SSHConfig.load(path: fleet.sshConfig)
    }

    deinit {
        fleet.stop()
        try? FileManager.default.removeItem(at: work)
    }

    func lookup(cache: NarInfoCache? = nil, trusted: [SigningKey]? = nil) throws -> Lookup {
        let stores = try fleet.builders.map { try opener.store(try StoreURI(parsing: $0.storeURI)) }
        let keys = try TrustedKeys(parsing: (trusted ?? [key1, key2]).map(\.publicKey).joined(separator: " "))
        return Lookup(stores: stores, trustedKeys: keys, cache: cache)
    }

    @Test func findsEachPathWhereItIsAndJudgesTrust() async throws {
        let missing = try StorePath(baseName: "00000000000000000000000000000000-nowhere")
        let paths = onlyB1.paths + onBoth.paths + unsigned.paths + untrusted.paths + [missing]
        let result = try await lookup().lookup(paths)
        #expect(result.failures.isEmpty)
        let byPath = Dictionary(uniqueKeysWithValues: result.answers.map { ($0.path, $0) })
        for p in onlyB1.paths {
            let a = try #require(byPath[p])
            #expect(a.locations.map(\.store) == ["ssh-ng://builder1"])
            #expect(a.best?.verification.verifiedBy.map(\.name) == ["builder1-1"])
        }
        for p in onBoth.paths {
            let a = try #require(byPath[p])
            #expect(a.locations.map(\.store) == ["ssh-ng://builder1", "ssh-ng://builder2"])
            #expect(a.locations.allSatisfy { $0.isTrusted })
        }
        for p in unsigned.paths + untrusted.paths {
            let a = try #require(byPath[p])
            #expect(a.locations.map(\.store) == ["ssh-ng://builder2"])
            #expect(a.best == nil)
            #expect(a.locations[0].verification.description.contains("is not signed by any of the keys in 'trusted-public-keys'"))
        }
        #expect(byPath[missing]?.locations.isEmpty == true)
    }

    @Test func trustingOnlyOneKeyMakesTheOtherBuildersCopiesUnusable() async throws {
        let result = try await lookup(trusted: [key2]).lookup(onBoth.paths + onlyB1.paths)
        for a in result.answers {
            if onBoth.paths.contains(a.path) {
                #expect(a.best?.store == "ssh-ng://builder2")
            } else {
                #expect(a.best == nil)
            }
        }
    }

    @Test func answersAreCachedPositiveAndNegativeWithNixTTLs() async throws {
        let clock = TestClock(now: 1_000_000)
        let cache = try NarInfoCache(path: work.appendingPathComponent("cache.sqlite").path, now: { clock.now })
        let missing = try StorePath(baseName: "11111111111111111111111111111111-nowhere")
        let paths = onlyB1.paths + [missing]
        let first = try await lookup(cache: cache).lookup(paths)
        #expect(first.answers.allSatisfy { $0.locations.allSatisfy { !$0.fromCache } })
        // With the builders gone, answers come from the cache.
        fleet.stop()
        let second = try await lookup(cache: cache).lookup(paths)
        for a in second.answers where a.path != missing {
            #expect(a.locations.count == 1 && a.locations[0].fromCache && a.best != nil)
        }
        #expect(second.failures.isEmpty, "every answer, even the negative one, was cached")
        // After the negative TTL (1 h) the missing path must be asked again (and fails: the builders are gone).
        clock.now += 3601
        let third = try await lookup(cache: cache).lookup(paths)
        #expect(!third.failures.isEmpty)
        #expect(third.answers.filter { $0.path != missing }.allSatisfy { $0.best?.fromCache == true })
        // After 30 days the positive answers expire too.
        clock.now += 30 * 24 * 3600
        let fourth = try await lookup(cache: cache).lookup(onlyB1.paths)
        #expect(fourth.answers.allSatisfy { $0.locations.isEmpty })
    }

    @Test func derivationOutputsResolveFromTheLocalDrv() throws {
        let expr = work.appendingPathComponent("d.nix")
        try """
        derivation { name = "nb-lookup-target"; system = builtins.currentSystem; builder = "/bin/sh";
          outputs = [ "out" "dev" ]; args = [ "-c" "echo > $out; echo > $dev" ]; }
        """.write(to: expr, atomically: true, encoding: .utf8)
        let drv = try TestSupport.run(["nix-instantiate", expr.path]).trimmed
        let outs = try TestSupport.run(["nix-store", "-q", "--outputs", drv]).trimmed.split(separator: "\n").map(String.init)
        let readFile: (String) throws -> [UInt8] = { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }
        let all = try Targets.resolve([drv], storeDir: .default, readFile: readFile).map { StoreDirectory.default.print($0) }
        #expect(Set(all) == Set(outs))
        let dev = try Targets.resolve([drv + "^dev"], storeDir: .default, readFile: readFile).map { StoreDirectory.default.print($0) }
        #expect(dev.count == 1 && dev[0].hasSuffix("-dev"))
        #expect(throws: Targets.TargetError.self) { try Targets.resolve([drv + "^nope"], storeDir: .default, readFile: readFile) }
    }
}

/// A clock the test moves.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64
    init(now: Int64) { value = now }
    var now: Int64 {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
