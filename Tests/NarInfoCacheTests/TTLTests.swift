import Testing
@testable import NarInfoCache

@Suite("NarInfoCache TTLs")
struct TTLTests {
    @Test("a positive answer is a hit for 30 days, then unknown")
    func positiveDefaultTTL() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock)
        let hash = Fixtures.hashPart(1)
        let text = Fixtures.narInfo(hashPart: hash)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .unknown)
        try cache.insert(storeURI: Fixtures.storeURI, hashPart: hash, narInfoText: text)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .hit(narInfoText: text, age: 0))

        clock.advance(30 * 24 * 3600 - 1)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash)
                == .hit(narInfoText: text, age: 30 * 24 * 3600 - 1))
        clock.advance(1)
        // Nix keeps rows with timestamp > now - ttl: at exactly the TTL the answer is gone.
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .unknown)
    }

    @Test("a negative answer is missing for 1 hour, then unknown")
    func negativeDefaultTTL() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock)
        let hash = Fixtures.hashPart(2)
        try cache.insertMissing(storeURI: Fixtures.storeURI, hashPart: hash)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .missing)
        clock.advance(3599)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .missing)
        clock.advance(1)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .unknown)
    }

    @Test("custom TTLs apply to both kinds, and a new answer replaces the old one")
    func customTTLs() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock, positiveTTL: 100, negativeTTL: 10)
        let present = Fixtures.hashPart(3), absent = Fixtures.hashPart(4)
        let text = Fixtures.narInfo(hashPart: present)
        try cache.insert(storeURI: Fixtures.storeURI, hashPart: present, narInfoText: text)
        try cache.insertMissing(storeURI: Fixtures.storeURI, hashPart: absent)
        clock.advance(9)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: absent) == .missing)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: present) == .hit(narInfoText: text, age: 9))
        clock.advance(1)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: absent) == .unknown)
        clock.advance(90)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: present) == .unknown)

        // The path appeared in the store after a negative answer: the positive one wins.
        try cache.insertMissing(storeURI: Fixtures.storeURI, hashPart: absent)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: absent) == .missing)
        let later = Fixtures.narInfo(hashPart: absent, name: "later")
        try cache.insert(storeURI: Fixtures.storeURI, hashPart: absent, narInfoText: later)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: absent) == .hit(narInfoText: later, age: 0))
    }

    @Test("the TTL is the reader's: a second opener with a shorter TTL sees the answer as expired")
    func ttlIsPerReader() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let writer = try Fixtures.open(path, clock: clock)
        let hash = Fixtures.hashPart(5)
        try writer.insert(storeURI: Fixtures.storeURI, hashPart: hash, narInfoText: Fixtures.narInfo(hashPart: hash))
        clock.advance(61)
        let strict = try NarInfoCache(path: path, positiveTTL: 60, now: clock.function)
        #expect(try strict.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .unknown)
        if case .hit(_, let age) = try writer.lookup(storeURI: Fixtures.storeURI, hashPart: hash) {
            #expect(age == 61)
        } else {
            Issue.record("the default TTL should still see the answer")
        }
        // Nix's floor on purges: the short TTL did not delete the row for everyone.
        #expect(try strict.stats().stores.first?.expired == 1)
    }

    @Test("expired rows are purged when a cache opens a day after the last purge")
    func purge() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock)
        try cache.insertMissing(storeURI: Fixtures.storeURI, hashPart: Fixtures.hashPart(6))
        clock.advance(2 * 3600)
        #expect(try cache.stats().stores.first?.expired == 1)
        // Within a day of the last purge (done at open): the expired row stays.
        _ = try NarInfoCache(path: path, now: clock.function)
        #expect(try cache.stats().stores.first?.expired == 1)
        clock.advance(24 * 3600)
        _ = try NarInfoCache(path: path, now: clock.function)
        #expect(try cache.stats().stores.first == .init(storeURI: Fixtures.storeURI, positive: 0, negative: 0, expired: 0))
    }
}
