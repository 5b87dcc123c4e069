import Foundation
import Testing
import NixCore
import TestSupport
@testable import NarInfoCache

@Suite("NarInfoCache stores, batches, stats")
struct StoresAndBatchesTests {
    @Test("answers are kept per store URI")
    func perStoreSeparation() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock,
                                      stores: [Fixtures.storeURI, Fixtures.otherURI])
        let hash = Fixtures.hashPart(10)
        let text = Fixtures.narInfo(hashPart: hash)
        try cache.insert(storeURI: Fixtures.storeURI, hashPart: hash, narInfoText: text)
        try cache.insertMissing(storeURI: Fixtures.otherURI, hashPart: hash)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .hit(narInfoText: text, age: 0))
        #expect(try cache.lookup(storeURI: Fixtures.otherURI, hashPart: hash) == .missing)
        #expect(try cache.lookup(storeURI: "file:///never/registered", hashPart: hash) == .unknown)
        #expect(throws: NarInfoCacheError.self) {
            try cache.insert(storeURI: "file:///never/registered", hashPart: hash, narInfoText: text)
        }
    }

    @Test("store info is recorded, updated, and kept with its answers")
    func cacheInfo() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock)
        #expect(try cache.cacheExists(storeURI: Fixtures.storeURI) == Fixtures.info)
        #expect(try cache.cacheExists(storeURI: Fixtures.otherURI) == nil)
        let hash = Fixtures.hashPart(11)
        try cache.insertMissing(storeURI: Fixtures.storeURI, hashPart: hash)
        let updated = NarInfoCache.CacheInfo(storeDir: "/gnu/store", wantMassQuery: false, priority: 10)
        try cache.createCache(storeURI: Fixtures.storeURI, info: updated)
        // A second connection sees the update, and the answers survived re-registration.
        let other = try NarInfoCache(path: path, now: clock.function)
        #expect(try other.cacheExists(storeURI: Fixtures.storeURI) == updated)
        #expect(try other.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .missing)
    }

    @Test("a batch of 10,000 paths is written and read in one transaction each")
    func batchOf10000() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock)
        let present = (0..<10_000).map { Fixtures.hashPart($0) }
        let absent = (10_000..<15_000).map { Fixtures.hashPart($0) }
        try cache.insert(storeURI: Fixtures.storeURI,
                         entries: present.map { (hashPart: $0, narInfoText: Fixtures.narInfo(hashPart: $0)) })
        try cache.insertMissing(storeURI: Fixtures.storeURI, hashParts: absent)
        clock.advance(5)
        let unknown = Fixtures.hashPart(99_999)
        let outcomes = try cache.lookup(storeURI: Fixtures.storeURI, hashParts: present + absent + [unknown])
        #expect(outcomes.count == 15_001)
        for (hash, outcome) in zip(present, outcomes) {
            guard outcome == .hit(narInfoText: Fixtures.narInfo(hashPart: hash), age: 5) else {
                Issue.record("\(hash): \(outcome)")
                break
            }
        }
        #expect(outcomes[10_000..<15_000].allSatisfy { $0 == .missing })
        #expect(outcomes.last == .unknown)
        #expect(try cache.stats().stores == [.init(storeURI: Fixtures.storeURI, positive: 10_000, negative: 5_000, expired: 0)])
    }

    @Test("a failing batch writes nothing")
    func batchIsAtomic() throws {
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: TestClock())
        let tooLarge = String(repeating: "x", count: NarInfoCache.maxNarInfoSize + 1)
        let entries = [(hashPart: Fixtures.hashPart(1), narInfoText: "StorePath: /nix/store/a-b\n"),
                       (hashPart: Fixtures.hashPart(2), narInfoText: tooLarge)]
        #expect(throws: NarInfoCacheError.self) { try cache.insert(storeURI: Fixtures.storeURI, entries: entries) }
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: Fixtures.hashPart(1)) == .unknown)
    }

    @Test("stats count live and expired answers per store; clear forgets negatives or all")
    func statsAndClear() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock, stores: [Fixtures.storeURI, Fixtures.otherURI])
        try cache.insert(storeURI: Fixtures.storeURI,
                         entries: (0..<3).map { (Fixtures.hashPart($0), Fixtures.narInfo(hashPart: Fixtures.hashPart($0))) })
        try cache.insertMissing(storeURI: Fixtures.storeURI, hashParts: (3..<5).map(Fixtures.hashPart))
        clock.advance(3600)  // the two negatives expire
        try cache.insertMissing(storeURI: Fixtures.otherURI, hashParts: (5..<9).map(Fixtures.hashPart))
        var stats = try cache.stats()
        #expect(stats.stores == [
            .init(storeURI: Fixtures.storeURI, positive: 3, negative: 0, expired: 2),
            .init(storeURI: Fixtures.otherURI, positive: 0, negative: 4, expired: 0),
        ].sorted { $0.storeURI < $1.storeURI })
        let onDisk = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        #expect(stats.fileSize >= Int64(onDisk) && onDisk > 0)

        try cache.clear(negativeOnly: true)
        stats = try cache.stats()
        #expect(stats.stores.map(\.positive) == [3, 0] && stats.stores.map(\.negative) == [0, 0])
        #expect(stats.stores.map(\.expired) == [0, 0])
        try cache.clear()
        #expect(try cache.stats().stores.allSatisfy { $0.positive + $0.negative + $0.expired == 0 })
        #expect(try cache.cacheExists(storeURI: Fixtures.otherURI) == Fixtures.info)
    }

    @Test("the columns are filled from a narinfo written by real Nix",
          .tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
    func realNarInfo() throws {
        let dir = try TestSupport.temporaryDirectory("nb-narinfo-real")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("greeting")
        try Data("hello from the narinfo cache test \(UUID())\n".utf8).write(to: file)
        let storePath = try TestSupport.run(["nix-store", "--add", file.path]).trimmed
        try TestSupport.nix(["copy", "--to", "file://\(dir.path)/bc", storePath])
        let base = try StorePath(baseName: (storePath as NSString).lastPathComponent)
        let narInfo = try String(contentsOf: dir.appendingPathComponent("bc/\(base.hashPart).narinfo"), encoding: .utf8)
        let json = try TestSupport.nix(["path-info", "--json", storePath]).stdout
        let info = try #require((try JSONSerialization.jsonObject(with: json) as? [[String: Any]])?.first)
        let narHash = try Hash(parsing: try #require(info["narHash"] as? String))

        let storeURI = "file://\(dir.path)/bc"
        let cache = try Fixtures.open(dir.appendingPathComponent("cache.sqlite").path, clock: TestClock(),
                                      stores: [storeURI])
        try cache.insert(storeURI: storeURI, hashPart: base.hashPart, narInfoText: narInfo)
        #expect(try cache.lookup(storeURI: storeURI, hashPart: base.hashPart) == .hit(narInfoText: narInfo, age: 0))
        let columns = try cache.locked { () throws -> NarInfoFields in
            let s = try cache.db.statement("select namePart, narHash, narSize from NARs where hashPart = ?")
            try s.bind(1, .text(base.hashPart))
            defer { s.reset() }
            try #require(try s.step())
            return NarInfoFields(namePart: s.text(0), narHash: s.text(1), narSize: s.isNull(2) ? nil : s.int64(2))
        }
        #expect(columns == NarInfoFields(namePart: base.name, narHash: narHash.string(.nix32),
                                         narSize: (info["narSize"] as? NSNumber)?.int64Value))
    }
}
