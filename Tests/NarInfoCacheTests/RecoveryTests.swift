import Foundation
import Testing
import TestSupport
@testable import NarInfoCache

@Suite("NarInfoCache recovery and migration")
struct RecoveryTests {
    /// Checks the cache works after opening on a fresh file.
    private func expectUsable(_ cache: NarInfoCache) throws {
        try cache.createCache(storeURI: Fixtures.storeURI, info: Fixtures.info)
        let hash = Fixtures.hashPart(7)
        try cache.insert(storeURI: Fixtures.storeURI, hashPart: hash, narInfoText: Fixtures.narInfo(hashPart: hash))
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: hash) != .unknown)
    }

    @Test("a file that is not a database is moved aside and rebuilt")
    func notADatabase() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let garbage = Data(String(repeating: "this is not an SQLite database\n", count: 300).utf8)
        try garbage.write(to: URL(fileURLWithPath: path))

        do {
            let cache = try NarInfoCache(path: path, now: clock.function)
            let recovery = try #require(cache.recovery)
            guard case .corrupt(let error) = recovery.reason else {
                Issue.record("expected corrupt, got \(recovery.reason)")
                return
            }
            #expect(error.path == path && error.message.contains("not a database"))
            #expect(error.description.contains("'\(path)'") && error.description.contains("journal_mode"))
            #expect(recovery.movedTo == "\(path).corrupt-\(clock.now)")
            #expect(FileManager.default.contents(atPath: recovery.movedTo) == garbage)
            try expectUsable(cache)
        }
        // The same again within the same second does not overwrite the first saved file.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try garbage.write(to: URL(fileURLWithPath: path))
        let again = try NarInfoCache(path: path, now: clock.function)
        #expect(again.recovery?.movedTo == "\(path).corrupt-\(clock.now).1")
        try expectUsable(again)
    }

    @Test("a damaged database is moved aside and rebuilt")
    func damagedDatabase() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        do {
            let cache = try Fixtures.open(path, clock: clock)
            try cache.insertMissing(storeURI: Fixtures.storeURI, hashParts: (0..<2000).map(Fixtures.hashPart))
        }  // closed: the WAL is checkpointed into the file
        // Keep SQLite's 100-byte header, destroy the schema page and what follows.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: 100)
        handle.write(Data(repeating: 0xA5, count: 16_384))
        try handle.close()

        let cache = try NarInfoCache(path: path, now: clock.function)
        guard case .corrupt(let error)? = cache.recovery?.reason else {
            Issue.record("expected corrupt, got \(String(describing: cache.recovery))")
            return
        }
        #expect(error.isCorruption)
        try expectUsable(cache)
    }

    @Test("damaged data pages are found by the daily purge's scan, and the file is rebuilt")
    func damagedDataPages() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        do {
            let cache = try Fixtures.open(path, clock: clock)
            try cache.insert(storeURI: Fixtures.storeURI,
                             entries: (0..<2000).map { (Fixtures.hashPart($0), Fixtures.narInfo(hashPart: Fixtures.hashPart($0))) })
        }
        // The schema page is intact, so opening within the day works; the middle of the file is not.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(size * 3 / 10))
        handle.write(Data(repeating: 0x5A, count: size * 4 / 10))
        try handle.close()
        #expect(try NarInfoCache(path: path, now: clock.function).recovery == nil)

        clock.advance(25 * 3600)
        let cache = try NarInfoCache(path: path, now: clock.function)
        guard case .corrupt(let error)? = cache.recovery?.reason else {
            Issue.record("expected corrupt, got \(String(describing: cache.recovery))")
            return
        }
        #expect(error.isCorruption && error.sql.contains("delete from NARs"))
        try expectUsable(cache)
    }

    @Test("an SQLite file of something else is moved aside, not written into")
    func foreignDatabase() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        do {
            let other = try SQLiteConnection(path: path)
            try other.exec("create table Bookmarks (url text); insert into Bookmarks values ('https://nixos.org')")
        }
        let cache = try NarInfoCache(path: path, now: clock.function)
        guard case .foreign(let why)? = cache.recovery?.reason else {
            Issue.record("expected foreign, got \(String(describing: cache.recovery))")
            return
        }
        #expect(why.contains("Bookmarks"))
        #expect(cache.recovery?.movedTo == "\(path).foreign-\(clock.now)")
        let moved = try SQLiteConnection(path: try #require(cache.recovery?.movedTo))
        #expect(try moved.scalar("select count(*) from Bookmarks") == 1)
        try expectUsable(cache)
    }

    @Test("a file of a newer schema version is moved aside")
    func newerVersion() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        do {
            _ = try Fixtures.open(path, clock: clock)
            let raw = try SQLiteConnection(path: path)
            try raw.setUserVersion(NarInfoCacheSchema.currentVersion + 1)
        }
        let cache = try NarInfoCache(path: path, now: clock.function)
        guard case .newerVersion(let version)? = cache.recovery?.reason else {
            Issue.record("expected newer, got \(String(describing: cache.recovery))")
            return
        }
        #expect(version == NarInfoCacheSchema.currentVersion + 1)
        #expect(cache.recovery?.movedTo.hasSuffix(".newer-\(clock.now)") == true)
        try expectUsable(cache)
    }

    @Test("our tables with other columns are treated as foreign")
    func wrongColumns() throws {
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        do {
            let raw = try SQLiteConnection(path: path)
            try raw.exec("create table BinaryCaches (id integer primary key, url text); create table NARs (cache integer)")
            try raw.setUserVersion(NarInfoCacheSchema.currentVersion)
        }
        let cache = try NarInfoCache(path: path, now: TestClock().function)
        guard case .foreign(let why)? = cache.recovery?.reason else {
            Issue.record("expected foreign, got \(String(describing: cache.recovery))")
            return
        }
        #expect(why.contains("preparing"))
        try expectUsable(cache)
    }

    @Test("a version 1 file is migrated in place, keeping and completing its answers")
    func migrationFromVersion1() throws {
        let clock = TestClock()
        let path = try Fixtures.cachePath()
        defer { Fixtures.remove(path) }
        let present = Fixtures.hashPart(20), absent = Fixtures.hashPart(21)
        let text = Fixtures.narInfo(hashPart: present, name: "migrated-1.0", narSize: 123_456)
        do {
            let raw = try SQLiteConnection(path: path)
            try raw.exec(NarInfoCacheSchema.version1)
            try raw.setUserVersion(1)
            try raw.run("insert into BinaryCaches(url, timestamp, storeDir, wantMassQuery, priority) values (?, ?, '/nix/store', 1, 40)",
                        .text(Fixtures.storeURI), .integer(clock.now))
            try raw.run("insert into NARs(cache, hashPart, namePart, narInfo, timestamp, present) values (1, ?, 'migrated-1.0', ?, ?, 1)",
                        .text(present), .text(text), .integer(clock.now))
            try raw.run("insert into NARs(cache, hashPart, timestamp, present) values (1, ?, ?, 0)",
                        .text(absent), .integer(clock.now))
        }
        clock.advance(10)
        let cache = try NarInfoCache(path: path, now: clock.function)
        #expect(cache.recovery == nil)
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: present) == .hit(narInfoText: text, age: 10))
        #expect(try cache.lookup(storeURI: Fixtures.storeURI, hashPart: absent) == .missing)
        #expect(try cache.cacheExists(storeURI: Fixtures.storeURI) == Fixtures.info)
        let (version, narHash, narSize) = try cache.locked { () throws -> (Int64, String?, Int64) in
            let s = try cache.db.statement("select narHash, narSize from NARs where hashPart = ?")
            try s.bind(1, .text(present))
            defer { s.reset() }
            try #require(try s.step())
            return (try cache.db.userVersion(), s.text(0), s.int64(1))
        }
        #expect(version == NarInfoCacheSchema.currentVersion)
        #expect(narHash != nil && narHash == NarInfoFields(scanning: text).narHash)
        #expect(narSize == 123_456)
    }

    @Test("a path that cannot be opened is an error, and nothing is moved")
    func cannotOpen() throws {
        let dir = try TestSupport.temporaryDirectory("nb-narinfo-dir")
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = #expect(throws: SQLiteError.self) { try NarInfoCache(path: dir.path) }
        #expect(error?.path == dir.path)
        #expect(error?.description.contains("'\(dir.path)'") == true)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory) && isDirectory.boolValue)
    }

    @Test("the default file is under XDG_CACHE_HOME, else ~/.cache")
    func defaultPath() {
        #expect(NarInfoCache.defaultPath(environment: ["XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"])
                == "/x/cache/nix-bridge/narinfo-cache-v1.sqlite")
        #expect(NarInfoCache.defaultPath(environment: ["HOME": "/home/u"])
                == "/home/u/.cache/nix-bridge/narinfo-cache-v1.sqlite")
        #expect(NarInfoCache.defaultPath(environment: ["XDG_CACHE_HOME": "", "HOME": "/home/u"])
                == "/home/u/.cache/nix-bridge/narinfo-cache-v1.sqlite")
    }
}
