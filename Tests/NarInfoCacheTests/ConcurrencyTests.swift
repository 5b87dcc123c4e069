import Foundation
import Synchronization
import Testing
import TestSupport
@testable import NarInfoCache

/// Runs `count` bodies on their own threads at once and returns the errors they threw.
private func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [String] {
    let errors = Mutex<[String]>([])
    let done = DispatchSemaphore(value: 0)
    for i in 0..<count {
        Thread {
            do { try body(i) } catch { errors.withLock { $0.append("thread \(i): \(error)") } }
            done.signal()
        }.start()
    }
    for _ in 0..<count { done.wait() }
    return errors.withLock { $0 }
}

@Suite("NarInfoCache concurrency")
struct ConcurrencyTests {
    static let threads = 6
    static let singles = 150
    static let batch = 1_000

    @Test("connections on several threads create, write and read one file at once")
    func separateConnections() throws {
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let clock = TestClock()
        // Every thread opens the (not yet existing) file itself: creation races too.
        let errors = onThreads(Self.threads) { t in
            let cache = try Fixtures.open(path, clock: clock, stores: [Fixtures.storeURI, "store-\(t)"])
            let base = t * 100_000
            for i in 0..<Self.singles {
                let hash = Fixtures.hashPart(base + i)
                try cache.insert(storeURI: Fixtures.storeURI, hashPart: hash, narInfoText: Fixtures.narInfo(hashPart: hash))
                guard case .hit = try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) else {
                    throw NarInfoCacheError.unknownStore(uri: "lost \(hash)", path: path)
                }
            }
            let hashes = (0..<Self.batch).map { Fixtures.hashPart(base + 50_000 + $0) }
            try cache.insertMissing(storeURI: "store-\(t)", hashParts: hashes)
            let outcomes = try cache.lookup(storeURI: "store-\(t)", hashParts: hashes)
            if outcomes.contains(where: { $0 != .missing }) {
                throw NarInfoCacheError.unknownStore(uri: "lost a negative answer", path: path)
            }
        }
        #expect(errors == [])
        let stats = try NarInfoCache(path: path, now: clock.function).stats()
        #expect(stats.stores.count == Self.threads + 1)
        #expect(stats.stores.first { $0.storeURI == Fixtures.storeURI }?.positive == Self.threads * Self.singles)
        #expect(stats.stores.filter { $0.storeURI.hasPrefix("store-") }.allSatisfy { $0.negative == Self.batch })
    }

    @Test("one instance is shared safely between threads")
    func sharedInstance() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let cache = try Fixtures.open(path, clock: clock)
        let errors = onThreads(Self.threads) { t in
            for i in 0..<Self.singles {
                let hash = Fixtures.hashPart(t * 1_000 + i)
                if i % 2 == 0 {
                    try cache.insert(storeURI: Fixtures.storeURI, hashPart: hash, narInfoText: Fixtures.narInfo(hashPart: hash))
                } else {
                    try cache.insertMissing(storeURI: Fixtures.storeURI, hashPart: hash)
                }
                _ = try cache.lookup(storeURI: Fixtures.storeURI, hashParts: [hash, Fixtures.hashPart(i)])
            }
        }
        #expect(errors == [])
        let total = Self.threads * Self.singles
        #expect(try cache.stats().stores == [.init(storeURI: Fixtures.storeURI, positive: total / 2, negative: total / 2, expired: 0)])
    }

    @Test("a writer waits for another's lock up to the busy timeout, then fails with a busy error")
    func busyTimeout() throws {
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let clock = TestClock()
        let cache = try NarInfoCache(path: path, busyTimeoutMilliseconds: 200, now: clock.function)
        try cache.createCache(storeURI: Fixtures.storeURI, info: Fixtures.info)
        let holder = try SQLiteConnection(path: path)
        try holder.exec("begin immediate")
        let hash = Fixtures.hashPart(1)
        let started = ContinuousClock.now
        let error = #expect(throws: SQLiteError.self) { try cache.insertMissing(storeURI: Fixtures.storeURI, hashPart: hash) }
        #expect(ContinuousClock.now - started >= .milliseconds(150))
        #expect(error?.description.hasPrefix("SQLite database '\(path)' is busy") == true)
        // Readers are not blocked by a writer in WAL mode.
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .unknown)
        try holder.exec("commit")
        try cache.insertMissing(storeURI: Fixtures.storeURI, hashPart: hash)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) == .missing)
    }

    @Test("another process (the sqlite3 CLI) writes while threads write",
          .tags(.hostTools), .enabled(if: TestSupport.has("sqlite3"), "needs the sqlite3 CLI"))
    func anotherProcess() throws {
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let clock = TestClock()
        let cache = try Fixtures.open(path, clock: clock)
        let id = try #require(try cache.locked { try cache.cacheID(Fixtures.storeURI) })
        // 100 transactions of 20 rows each, every one waiting for the lock when it must.
        var script = ".timeout 60000\n"
        for t in 0..<100 {
            script += """
                begin immediate;
                with recursive n(i) as (select 0 union all select i + 1 from n where i < 19)
                insert into NARs(cache, hashPart, timestamp, present)
                    select \(id), 'cli-\(t)-' || i, \(clock.now), 0 from n;
                commit;

                """
        }
        let input = Data(script.utf8)
        let cliStatus = Mutex<String?>(nil)
        let errors = onThreads(Self.threads + 1) { t in
            if t == Self.threads {
                let out = try TestSupport.run(["sqlite3", path], input: input, check: false)
                cliStatus.withLock { $0 = "\(out.status) \(out.stderr)" }
                return
            }
            let own = try NarInfoCache(path: path, now: clock.function)
            for chunk in 0..<4 {
                let hashes = (0..<250).map { Fixtures.hashPart(t * 10_000 + chunk * 250 + $0) }
                try own.insert(storeURI: Fixtures.storeURI,
                               entries: hashes.map { ($0, Fixtures.narInfo(hashPart: $0)) })
            }
        }
        #expect(errors == [])
        #expect(cliStatus.withLock { $0 } == "0 ")
        let stats = try cache.stats()
        #expect(stats.stores == [.init(storeURI: Fixtures.storeURI, positive: Self.threads * 1_000, negative: 2_000, expired: 0)])
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: "cli-99-19") == .missing)
    }
}
