import Foundation
import Testing
import TestSupport
@testable import NarInfoCache

@Suite("NarInfoCache verdicts, batch reads and the version 2 to 3 migration")
struct VerdictTests {
    let uri = Fixtures.storeURI

    @Test("a verdict is read back only under the key it was recorded with")
    func verdictOnlyUnderItsKey() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock)
        let h = Fixtures.hashPart(1), text = Fixtures.narInfo(hashPart: Fixtures.hashPart(1))
        let record: [UInt8] = [1, 0, 255, 7]
        try cache.record(storeURI: uri, entries: [.init(hashPart: h, narInfoText: text, verdict: .init(key: "K1", value: "signed a-1"),
                                                        record: record)],
                         missing: [])
        #expect(try cache.answers(storeURI: uri, hashParts: [h], verdictKey: "K1")
                == [.hit(.init(narInfoText: nil, age: 0, verdict: "signed a-1", record: record))])
        // With a record and a verdict the text is not needed, so not read; under another key the
        // text is read (to judge it again). The record does not depend on the trust settings.
        #expect(try cache.answers(storeURI: uri, hashParts: [h], verdictKey: "K2")
                == [.hit(.init(narInfoText: text, age: 0, verdict: nil, record: record))])
        // The old point look-up still sees the answer.
        #expect(try cache.lookup(storeURI: uri, hashPart: h) == .hit(narInfoText: text, age: 0))
    }

    @Test("replacing an answer drops its verdict and record; a verdict is added only to the text it judged")
    func verdictFollowsTheText() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock)
        let h = Fixtures.hashPart(2)
        let old = Fixtures.narInfo(hashPart: h, narSize: 100), new = Fixtures.narInfo(hashPart: h, narSize: 200)
        try cache.record(storeURI: uri, entries: [.init(hashPart: h, narInfoText: old, verdict: .init(key: "K", value: "ca"),
                                                        record: [1])],
                         missing: [])
        try cache.insert(storeURI: uri, hashPart: h, narInfoText: new)
        #expect(try cache.answers(storeURI: uri, hashParts: [h], verdictKey: "K") == [.hit(.init(narInfoText: new, age: 0, verdict: nil))])
        // A verdict made on the old text (by a process that read it before the replacement) is not attached.
        try cache.recordVerdicts(storeURI: uri, key: "K", [(h, old, "ca")])
        #expect(try cache.answers(storeURI: uri, hashParts: [h], verdictKey: "K") == [.hit(.init(narInfoText: new, age: 0, verdict: nil))])
        try cache.recordVerdicts(storeURI: uri, key: "K", [(h, new, "signed b-1")])
        #expect(try cache.answers(storeURI: uri, hashParts: [h], verdictKey: "K")
                == [.hit(.init(narInfoText: new, age: 0, verdict: "signed b-1"))])
    }

    @Test("batch reads (in table order, through the index, or index probes) answer as point reads do")
    func batchEqualsPointReads() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock, stores: [uri, Fixtures.otherURI])
        let hashes = (0..<200).map(Fixtures.hashPart)
        let present = Array(hashes[0..<80]), absent = Array(hashes[80..<140])
        try cache.record(storeURI: uri, entries: present.enumerated().map { i, h in
            .init(hashPart: h, narInfoText: Fixtures.narInfo(hashPart: h), verdict: i % 2 == 0 ? .init(key: "K", value: "v\(i)") : nil)
        }, missing: absent)
        // The other store's rows must not leak into this store's answers.
        try cache.record(storeURI: Fixtures.otherURI, entries: hashes[140...].map { .init(hashPart: $0, narInfoText: "x") }, missing: [])
        clock.advance(10)
        let asked = hashes.reversed() + [hashes[3], hashes[100], hashes[150]]
        #expect(asked.count >= NarInfoCache.batchReadThreshold)
        let batch = try cache.answers(storeURI: uri, hashParts: asked, verdictKey: "K")
        let points = try asked.map { try cache.answers(storeURI: uri, hashParts: [$0], verdictKey: "K")[0] }
        #expect(batch == points)
        // Fewer hash parts than a quarter of the store's rows take the index (not a scan).
        let few = Array(asked.suffix(NarInfoCache.batchReadThreshold + 1))
        #expect(few.count * 4 < 140)
        #expect(try cache.answers(storeURI: uri, hashParts: few, verdictKey: "K") == Array(points.suffix(few.count)))
        #expect(batch.filter { if case .hit = $0 { true } else { false } }.count == 81)
        #expect(batch.filter { $0 == .missing }.count == 61)
        #expect(batch.filter { $0 == .unknown }.count == 61)
        #expect(batch.last == .unknown && batch[batch.count - 3] == .hit(.init(narInfoText: Fixtures.narInfo(hashPart: hashes[3]), age: 10, verdict: nil)))
        // With the store a small share of the table, its pass goes through the index instead
        // of reading the table in order: the same answers.
        try cache.record(storeURI: Fixtures.otherURI, entries: [],
                         missing: (1000..<2000).map(Fixtures.hashPart))
        #expect(try cache.answers(storeURI: uri, hashParts: asked, verdictKey: "K") == points)
        // After the negative TTL the misses read as unknown in the batch too.
        clock.advance(3600)
        #expect(try cache.answers(storeURI: uri, hashParts: asked, verdictKey: "K").filter { $0 == .missing }.isEmpty)
        // An unregistered store knows nothing.
        #expect(try cache.answers(storeURI: "ssh-ng://nowhere", hashParts: asked, verdictKey: "K").allSatisfy { $0 == .unknown })
    }

    @Test("a version 2 file (last session's) is migrated in place: answers kept, no verdicts, then verdicts recorded")
    func migrationFromVersion2() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let present = Fixtures.hashPart(30), absent = Fixtures.hashPart(31)
        let text = Fixtures.narInfo(hashPart: present, name: "migrated-2.0", narSize: 654_321)
        do {
            // Exactly the layout version 2 wrote: version 1 plus its migration.
            let raw = try SQLiteConnection(path: path)
            try raw.exec("pragma journal_mode = wal")
            try raw.exec(NarInfoCacheSchema.version1)
            try raw.exec(NarInfoCacheSchema.version1To2)
            try raw.setUserVersion(2)
            try raw.run("insert into BinaryCaches(url, timestamp, storeDir, wantMassQuery, priority) values (?, ?, '/nix/store', 1, 40)",
                        .text(uri), .integer(clock.now))
            try raw.run("""
                insert into NARs(cache, hashPart, namePart, narHash, narSize, narInfo, timestamp, present)
                    values (1, ?, 'migrated-2.0', 'sha256:x', 654321, ?, ?, 1)
                """, .text(present), .text(text), .integer(clock.now))
            try raw.run("insert into NARs(cache, hashPart, timestamp, present) values (1, ?, ?, 0)",
                        .text(absent), .integer(clock.now))
            try raw.run("insert into LastPurge(dummy, value) values ('', ?)", .integer(clock.now))
        }
        clock.advance(5)
        let cache = try NarInfoCache(path: path, now: clock.function)
        #expect(cache.recovery == nil)
        #expect(try cache.locked { try cache.db.userVersion() } == NarInfoCacheSchema.currentVersion)
        #expect(NarInfoCacheSchema.currentVersion == 3)
        #expect(try cache.answers(storeURI: uri, hashParts: [present, absent], verdictKey: "K")
                == [.hit(.init(narInfoText: text, age: 5, verdict: nil)), .missing])
        #expect(try cache.cacheExists(storeURI: uri) == Fixtures.info)
        try cache.recordVerdicts(storeURI: uri, key: "K", [(present, text, "signed a-1")])
        #expect(try cache.answers(storeURI: uri, hashParts: [present], verdictKey: "K")
                == [.hit(.init(narInfoText: text, age: 5, verdict: "signed a-1"))])
        // Opening the migrated file again changes nothing.
        let again = try NarInfoCache(path: path, now: clock.function)
        #expect(again.recovery == nil)
        #expect(try again.answers(storeURI: uri, hashParts: [present], verdictKey: "K")
                == [.hit(.init(narInfoText: text, age: 5, verdict: "signed a-1"))])
    }
}
