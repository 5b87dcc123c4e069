import Foundation

/// A SQLite cache of what binary caches answered to narinfo lookups, like Nix's
/// NarInfoDiskCache (`~/.cache/nix/binary-cache-v6.sqlite`): per store URI and store path
/// hash part, the narinfo text of a positive answer or the fact that the path was missing.
///
/// Answers expire as in Nix: positive ones after `narinfo-cache-positive-ttl` seconds (default
/// 30 days), negative ones after `narinfo-cache-negative-ttl` (default 1 hour); expired answers
/// read as `.unknown`. The file is in WAL mode with a busy timeout, so many processes and
/// connections can use it at once. A file that is damaged or not ours is moved aside and
/// rebuilt (see `recovery`): the cache only ever saves work, so losing it is never fatal.
///
/// One instance holds one connection and is safe to share between threads.
public final class NarInfoCache: @unchecked Sendable {
    /// Nix's default `narinfo-cache-positive-ttl`: 30 days.
    public static let defaultPositiveTTL: Int64 = 30 * 24 * 3600
    /// Nix's default `narinfo-cache-negative-ttl`: 1 hour.
    public static let defaultNegativeTTL: Int64 = 3600
    /// The file name under `$XDG_CACHE_HOME/nix-bridge/`.
    public static let defaultFileName = "narinfo-cache-v1.sqlite"
    /// Narinfo texts longer than this are refused (a narinfo with thousands of references is
    /// still far below it).
    public static let maxNarInfoSize = 16 << 20
    /// As Nix: purge expired rows at most once a day, never with TTLs below these floors,
    /// so a short TTL for one run does not wipe what others rely on.
    static let purgeInterval: Int64 = 24 * 3600

    /// The database file.
    public let path: String
    /// Seconds a positive answer stays valid (`narinfo-cache-positive-ttl`).
    public let positiveTTL: Int64
    /// Seconds a negative answer stays valid (`narinfo-cache-negative-ttl`).
    public let negativeTTL: Int64
    /// Set when the existing file could not be used and was moved aside while opening.
    public let recovery: Recovery?

    let now: @Sendable () -> Int64
    let lock = NSLock()
    let db: SQLiteConnection
    /// The hot statements, held directly (no look-up by SQL text per call).
    let statements: Statements.Prepared
    /// Store URI to BinaryCaches.id, filled on registration or first use (ids never change).
    var cacheIDs: [String: Int64] = [:]

    /// Opens (creating if needed) the cache file.
    ///
    /// - Parameters:
    ///   - path: the file; `defaultPath()` when nil (setting `narinfo-cache-file`).
    ///   - positiveTTL: `narinfo-cache-positive-ttl`, seconds.
    ///   - negativeTTL: `narinfo-cache-negative-ttl`, seconds.
    ///   - busyTimeoutMilliseconds: how long to wait for another writer's lock.
    ///   - now: the clock, seconds since the epoch (tests move it).
    public init(path: String? = nil,
                positiveTTL: Int64 = NarInfoCache.defaultPositiveTTL,
                negativeTTL: Int64 = NarInfoCache.defaultNegativeTTL,
                busyTimeoutMilliseconds: Int32 = 60_000,
                now: @escaping @Sendable () -> Int64 = NarInfoCache.systemTime) throws {
        let path = path ?? Self.defaultPath()
        self.path = path
        self.positiveTTL = max(0, positiveTTL)
        self.negativeTTL = max(0, negativeTTL)
        self.now = now
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let purge = { (db: SQLiteConnection) throws in
            try Self.purgeIfDue(db, now: now(), positiveTTL: max(0, positiveTTL), negativeTTL: max(0, negativeTTL))
        }
        do {
            (db, statements) = try Self.open(path: path, busyTimeout: busyTimeoutMilliseconds, purge: purge)
            recovery = nil
        } catch let reason as RecoveryReason {
            // Damaged or not ours: keep it for inspection under another name and start afresh.
            let movedTo = try Self.moveAside(path: path, suffix: "\(reason.suffix)-\(now())")
            recovery = Recovery(reason: reason, movedTo: movedTo)
            (db, statements) = try Self.open(path: path, busyTimeout: busyTimeoutMilliseconds, purge: purge)
        }
    }

    /// The current time in whole seconds since the epoch.
    public static let systemTime: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }

    /// `$XDG_CACHE_HOME/nix-bridge/narinfo-cache-v1.sqlite`, else under `$HOME/.cache`
    /// (as Nix's getCacheDir).
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let base: String
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            base = xdg
        } else {
            base = (environment["HOME"] ?? NSHomeDirectory()) + "/.cache"
        }
        return base + "/nix-bridge/" + defaultFileName
    }

    /// Switching to WAL needs an exclusive lock and SQLite may answer SQLITE_BUSY at once,
    /// without calling the busy handler (while another connection creates the file), so
    /// retry here for up to the busy timeout.
    private static func switchToWAL(_ db: SQLiteConnection, busyTimeout: Int32) throws(SQLiteError) {
        var waited: Int32 = 0
        while true {
            do {
                try db.exec("pragma journal_mode = wal")
                return
            } catch where error.isBusy && waited < busyTimeout {
                usleep(5_000)
                waited += 5
            }
        }
    }

    /// Opens the connection, sets it up and brings the schema up to date, or throws the
    /// RecoveryReason that makes the file unusable.
    private static func open(path: String, busyTimeout: Int32,
                             purge: (SQLiteConnection) throws -> Void) throws -> (SQLiteConnection, Statements.Prepared) {
        let db = try SQLiteConnection(path: path)
        do {
            try db.setBusyTimeout(milliseconds: busyTimeout)
            // WAL lets readers run beside one writer, across processes. With WAL, synchronous
            // NORMAL can lose the last commits on power loss but never corrupts: right for a cache.
            try switchToWAL(db, busyTimeout: busyTimeout)
            try db.exec("pragma synchronous = normal")
            // Reads through a memory map skip a copy and a system call per page.
            try db.exec("pragma mmap_size = \(256 << 20)")
            try db.exec("pragma cache_size = -16384")
            try db.exec("pragma foreign_keys = on")
            try db.transaction(immediate: true) { try NarInfoCacheSchema.ensure(db) }
            // Preparing every statement now checks that the tables have the columns we use.
            let statements = try prepareAll(db)
            try purge(db)
            return (db, statements)
        } catch let error as SQLiteError where error.isCorruption {
            db.close()
            throw RecoveryReason.corrupt(error)
        } catch let mismatch as NarInfoCacheSchema.Mismatch {
            db.close()
            switch mismatch {
            case .foreign(let why): throw RecoveryReason.foreign(why)
            case .newer(let version): throw RecoveryReason.newerVersion(version)
            }
        } catch {
            db.close()
            throw error
        }
    }

    private static func prepareAll(_ db: SQLiteConnection) throws -> Statements.Prepared {
        func prepare(_ sql: String) throws -> SQLiteStatement {
            let error: SQLiteError
            do {
                return try db.statement(sql)
            } catch let e {
                error = e
            }
            guard error.isSchemaMismatch else { throw error }
            throw RecoveryReason.foreign("\(error.message) (preparing '\(sql)')")
        }
        return Statements.Prepared(
            upsertCache: try prepare(Statements.upsertCache), queryCache: try prepare(Statements.queryCache),
            insertNAR: try prepare(Statements.insertNAR), insertMissingNAR: try prepare(Statements.insertMissingNAR),
            queryNAR: try prepare(Statements.queryNAR), queryNARVerdict: try prepare(Statements.queryNARVerdict),
            queryNARsBatch: try prepare(Statements.queryNARsBatch), scanNARs: try prepare(Statements.scanNARs),
            scanNARsTable: try prepare(Statements.scanNARsTable),
            updateVerdict: try prepare(Statements.updateVerdict))
    }

    /// Renames the file and its WAL and shared-memory companions (a stale WAL must not be
    /// replayed into the new file). Returns the new name of the main file.
    private static func moveAside(path: String, suffix: String) throws -> String {
        let fm = FileManager.default
        var target = "\(path).\(suffix)"
        var n = 1
        while fm.fileExists(atPath: target) {
            target = "\(path).\(suffix).\(n)"
            n += 1
        }
        try fm.moveItem(atPath: path, toPath: target)
        for companion in ["-wal", "-shm"] where fm.fileExists(atPath: path + companion) {
            try fm.moveItem(atPath: path + companion, toPath: target + companion)
        }
        return target
    }

    /// Runs `body` holding the connection's lock.
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
