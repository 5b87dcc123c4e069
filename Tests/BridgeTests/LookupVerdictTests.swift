import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore
import Testing
import TestSupport
@testable import Bridge

/// Trust verdicts remembered in the narinfo cache, against the real builders of LookupTests
/// (paths imported with `nix-store --import` and signed with `nix store sign`).
extension LookupTests {
    func cachePath(_ name: String) -> String { work.appendingPathComponent(name).path }

    /// Each location as "store: verdict text (cached?)", for comparing two lookups.
    func summary(_ r: Lookup.Result) -> [String] {
        r.answers.flatMap { a in a.locations.map { "\($0.store) \($0.verification) \($0.isTrusted)" } }
    }

    @Test func aCachedVerdictRebuildsExactlyWhatVerifyingSays() async throws {
        let cache = try NarInfoCache(path: cachePath("rebuild.sqlite"))
        let paths = onlyB1.paths + onBoth.paths + unsigned.paths + untrusted.paths
        let first = try await lookup(cache: cache).lookup(paths)
        #expect(first.failures.isEmpty)
        // Trusted answers were recorded with their verdict, untrusted ones without.
        let keys = try TrustedKeys(parsing: [key1, key2].map(\.publicKey).joined(separator: " "))
        let verdicts = TrustVerdicts(trustedKeys: keys, sigsNeeded: 1, storeDir: .default)
        let b1 = try cache.answers(storeURI: "ssh-ng://builder1", hashParts: (onlyB1.paths + onBoth.paths).map(\.hashPart),
                                   verdictKey: verdicts.key)
        #expect(b1.allSatisfy { if case let .hit(h) = $0 { h.verdict == "signed builder1-1" } else { false } })
        let b2 = try cache.answers(storeURI: "ssh-ng://builder2", hashParts: (unsigned.paths + untrusted.paths).map(\.hashPart),
                                   verdictKey: verdicts.key)
        #expect(b2.allSatisfy { if case let .hit(h) = $0 { h.verdict == nil } else { false } })
        // From the cache alone (builders gone), every location reads as the fresh lookup said.
        fleet.stop()
        let second = try await lookup(cache: cache).lookup(paths)
        #expect(second.failures.isEmpty)
        #expect(second.answers.allSatisfy { $0.locations.allSatisfy(\.fromCache) })
        #expect(summary(second) == summary(first))
        for (a, b) in zip(first.answers, second.answers) {
            #expect(a.locations.map { $0.verification.verifiedBy } == b.locations.map { $0.verification.verifiedBy })
            #expect(a.locations.map { $0.verification.rejected.map(\.check) } == b.locations.map { $0.verification.rejected.map(\.check) })
        }
    }

    @Test func changingTrustedKeysForcesReverification() async throws {
        let cache = try NarInfoCache(path: cachePath("rekey.sqlite"))
        let paths = onlyB1.paths + onBoth.paths
        let first = try await lookup(cache: cache).lookup(paths)
        #expect(first.answers.allSatisfy { $0.best != nil })
        fleet.stop()
        // Dropping builder1's key: its copies are no longer usable, though cached as trusted.
        let only2 = try await lookup(cache: cache, trusted: [key2]).lookup(paths)
        #expect(only2.answers.allSatisfy { $0.locations.allSatisfy(\.fromCache) })
        for a in only2.answers {
            if onBoth.paths.contains(a.path) {
                #expect(a.best?.store == "ssh-ng://builder2")
                #expect(a.locations.first { $0.store == "ssh-ng://builder1" }?.isTrusted == false)
            } else {
                #expect(a.best == nil)
                #expect(a.locations[0].verification.description.contains("is not signed by any of the keys in 'trusted-public-keys'"))
            }
        }
        // A different key under builder1's very name must not inherit its verdicts.
        let impostorDir = work.appendingPathComponent("impostor")
        try FileManager.default.createDirectory(at: impostorDir, withIntermediateDirectories: true)
        let impostor = try SigningKey.generate(name: key1.name, in: impostorDir)
        #expect(impostor.publicKey != key1.publicKey)
        let renamed = try await lookup(cache: cache, trusted: [impostor, key2]).lookup(onlyB1.paths)
        #expect(renamed.answers.allSatisfy { $0.best == nil && $0.locations.count == 1 })
        #expect(renamed.answers.allSatisfy {
            $0.locations[0].verification.rejected.contains { if case .mismatch = $0.check { true } else { false } }
        })
        // Back to the original keys: trusted again, from the cache.
        let back = try await lookup(cache: cache).lookup(paths)
        #expect(back.answers.allSatisfy { $0.best?.fromCache == true })
    }

    @Test func raisingSigsNeededForcesReverification() async throws {
        let cache = try NarInfoCache(path: cachePath("sigs.sqlite"))
        let once = try await lookup(cache: cache).lookup(onBoth.paths)
        #expect(once.answers.allSatisfy { $0.locations.count == 2 && $0.locations.allSatisfy(\.isTrusted) })
        fleet.stop()
        // Each copy carries one signature: with two needed, none is usable.
        var strict = try lookup(cache: cache)
        strict.sigsNeeded = 2
        let twice = await strict.lookup(onBoth.paths)
        #expect(twice.answers.allSatisfy { $0.locations.count == 2 && $0.best == nil })
        #expect(twice.answers.allSatisfy { $0.locations.allSatisfy { $0.verification.description.contains("1 valid signature(s)") } })
    }

    @Test func anUntrustedPathCachedStaysUntrusted() async throws {
        let path = cachePath("untrusted.sqlite")
        let paths = unsigned.paths + untrusted.paths
        let first = try await lookup(cache: try NarInfoCache(path: path)).lookup(paths)
        #expect(first.answers.allSatisfy { $0.best == nil && $0.locations.count == 1 })
        fleet.stop()
        // Again from the cache, with a new cache object (as a new process would).
        for _ in 0..<2 {
            let again = try await lookup(cache: try NarInfoCache(path: path)).lookup(paths)
            #expect(again.failures.isEmpty)
            for a in again.answers {
                #expect(a.best == nil)
                #expect(a.locations.count == 1 && a.locations[0].fromCache)
                #expect(a.locations[0].verification.description.contains("is not signed by any of the keys in 'trusted-public-keys'"))
            }
            #expect(summary(again) == summary(first))
        }
        // The stranger's signature is reported by name, as on the fresh lookup.
        let strangerPaths = Set(untrusted.paths)
        let cached = try await lookup(cache: try NarInfoCache(path: path)).lookup(paths)
        for a in cached.answers where strangerPaths.contains(a.path) {
            #expect(a.locations[0].verification.rejected.map(\.check) == [.untrustedKey(keyName: stranger.name)])
        }
    }

    @Test func aForgedVerdictUnderAnotherKeyIsIgnored() async throws {
        let path = cachePath("forged.sqlite")
        let cache = try NarInfoCache(path: path)
        _ = try await lookup(cache: cache).lookup(unsigned.paths)
        fleet.stop()
        // A verdict recorded under other settings (here: an empty key set) means nothing now.
        for p in unsigned.paths {
            let text = try #require(try cache.answers(storeURI: "ssh-ng://builder2", hashParts: [p.hashPart], verdictKey: "")
                .first.flatMap { if case let .hit(h) = $0 { h.narInfoText } else { nil } } ?? nil)
            try cache.recordVerdicts(storeURI: "ssh-ng://builder2", key: "not-the-current-settings", [(p.hashPart, text, "ca")])
        }
        let again = try await lookup(cache: cache).lookup(unsigned.paths)
        #expect(again.answers.allSatisfy { $0.best == nil && $0.locations.count == 1 })
    }

    /// Writes `verdict` under the current settings for each of `paths` on builder 2, straight
    /// into the SQLite file (anyone who can write it can do so).
    func forge(_ verdict: String, _ paths: [StorePath], in cache: NarInfoCache, _ l: Lookup) throws {
        for p in paths {
            let text = try #require(try cache.answers(storeURI: "ssh-ng://builder2", hashParts: [p.hashPart], verdictKey: "")
                .first.flatMap { if case let .hit(h) = $0 { h.narInfoText } else { nil } } ?? nil)
            try cache.recordVerdicts(storeURI: "ssh-ng://builder2", key: l.verdictKey, [(p.hashPart, text, verdict)])
        }
    }

    /// A "ca" verdict is not believed: the path's own CA is looked at (these have none).
    @Test func aForgedCAVerdictIsNotBelieved() async throws {
        let cache = try NarInfoCache(path: cachePath("forged-ca.sqlite"))
        let l = try lookup(cache: cache)
        _ = await l.lookup(unsigned.paths)
        try forge("ca", unsigned.paths, in: cache, l)
        let again = await l.lookup(unsigned.paths)
        #expect(again.answers.allSatisfy { $0.best == nil && $0.locations.count == 1 && $0.locations[0].fromCache })
    }

    /// A "signed" verdict forged under the current settings fools a lookup read from the
    /// cache (which only reports), but it is never served nor signed.
    @Test func aForgedVerdictIsNeverServedOrSigned() async throws {
        let cache = try NarInfoCache(path: cachePath("forged-serve.sqlite"))
        let l = try lookup(cache: cache)
        _ = await l.lookup(unsigned.paths)
        try forge("signed builder1-1", unsigned.paths, in: cache, l)
        let fooled = await l.lookup(unsigned.paths)
        #expect(fooled.answers.allSatisfy { $0.best?.fromCache == true }, "the forged verdict is read back")
        let ours = try SecretKey.generate(name: "bridge-1")
        let view = FleetView(lookup: l, signingKeys: [ours])
        #expect(try await view.pathInfos(unsigned.paths).isEmpty)
        #expect(try await view.validPaths(unsigned.paths).isEmpty)
        await #expect(throws: FleetView.NARError.self) { try await view.narFromPath(unsigned.paths[0]) { _ in } }
    }

    /// A verdict forged under the current settings fools a lookup read from the cache, but not
    /// substitution: what enters the store is verified again.
    @Test func aForgedVerdictDoesNotGetAPathIntoTheStore() async throws {
        let cache = try NarInfoCache(path: cachePath("forged-current.sqlite"))
        let l = try lookup(cache: cache)
        _ = await l.lookup(unsigned.paths)
        try forge("signed builder1-1", unsigned.paths, in: cache, l)
        let fooled = await l.lookup(unsigned.paths)
        #expect(fooled.answers.allSatisfy { $0.best?.fromCache == true }, "the forged verdict is read back")
        let destRoot = try FixtureStore.scratchDirectory("nb-forged-dest")
        defer { try? FileManager.default.removeItem(at: destRoot) }
        let dest = try opener.store(try StoreURI(parsing: "local?root=\(destRoot.path)"))
        let substituter = Substituter(lookup: l, destination: dest)
        await #expect(throws: Substituter.SubstituteError.self) { try await substituter.substitute([unsigned.paths[0]]) }
        let valid = try await dest.queryValidPaths(Set(unsigned.paths))
        #expect(valid.isEmpty)
        await dest.close()
    }
}

/// The digest verdicts are recorded under: it must change with every setting they depend on.
@Suite(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin) to make keys"))
struct TrustVerdictKeyTests {
    @Test func theKeyCoversKeysSigsNeededAndStoreDir() throws {
        let dir = try TestSupport.temporaryDirectory("nb-verdict-key")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try SigningKey.generate(name: "a-1", in: dir), b = try SigningKey.generate(name: "b-1", in: dir)
        let other = dir.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let a2 = try SigningKey.generate(name: "a-1", in: other)
        func key(_ keys: [SigningKey], sigs: Int = 1, dir: String = "/nix/store") throws -> String {
            TrustVerdicts(trustedKeys: try TrustedKeys(parsing: keys.map(\.publicKey).joined(separator: " ")),
                          sigsNeeded: sigs, storeDir: StoreDirectory(dir)).key
        }
        let base = try key([a, b])
        #expect(try key([b, a]) == base, "the order of trusted-public-keys does not matter")
        #expect(try key([a, b, a2]) == base, "a later key of the same name is ignored, as by Nix")
        #expect(try key([a]) != base)
        #expect(try key([a2, b]) != base, "same name, other key bytes")
        #expect(try key([a, b], sigs: 2) != base)
        #expect(try key([a, b], sigs: 0) == base, "sigs-needed 0 means 1")
        #expect(try key([a, b], dir: "/other/store") != base)
        #expect(try key([]) != base)
    }
}

extension LookupTests {
    @Test func aCachedRecordReadsBackAsItsNarInfoText() async throws {
        let cache = try NarInfoCache(path: cachePath("records.sqlite"))
        let paths = onlyB1.paths + onBoth.paths + unsigned.paths + untrusted.paths
        let fresh = try await lookup(cache: cache).lookup(paths)
        var checked = 0
        for uri in ["ssh-ng://builder1", "ssh-ng://builder2"] {
            for case let .hit(hit) in try cache.answers(storeURI: uri, hashParts: paths.map(\.hashPart), verdictKey: "") {
                let record = try #require(hit.record)
                let parsed = try NarInfo(parsing: try #require(hit.narInfoText), whence: "test", storeDir: .default).pathInfo
                #expect(NarInfoRecord.decode(record) == parsed)
                // Damaged records decode to nil (the text is parsed instead), never to another path.
                #expect(NarInfoRecord.decode(Array(record.dropLast())) == nil)
                #expect(NarInfoRecord.decode(record + [0]) == nil)
                checked += 1
            }
        }
        #expect(checked == onlyB1.paths.count + 2 * onBoth.paths.count + unsigned.paths.count + untrusted.paths.count)
        // And the fields a warm lookup reports are the fresh ones (less what a narinfo cannot say).
        fleet.stop()
        let warm = try await lookup(cache: cache).lookup(paths)
        for (a, b) in zip(fresh.answers, warm.answers) {
            #expect(a.locations.map { [$0.info.narHash, $0.info.narSize, $0.info.references, $0.info.sigs, $0.info.deriver] as [AnyHashable?] }
                    == b.locations.map { [$0.info.narHash, $0.info.narSize, $0.info.references, $0.info.sigs, $0.info.deriver] as [AnyHashable?] })
        }
    }
}
