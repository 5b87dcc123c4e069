import CSQLite

/// A failed SQLite call, with what was being done, on which file, and SQLite's own words.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// SQLite's extended result code (e.g. 26 = SQLITE_NOTADB, 11 = SQLITE_CORRUPT).
    public var code: Int32
    /// SQLite's message for the failure (`sqlite3_errmsg`, else `sqlite3_errstr`).
    public var message: String
    /// What was being done: the SQL text, or an operation such as "opening".
    public var sql: String
    /// The database file.
    public var path: String

    /// Worded as Nix's SQLite errors.
    public var description: String {
        if sql == Self.opening { return "cannot open SQLite database '\(path)': \(message)" }
        if primaryCode == SQLITE_BUSY { return "SQLite database '\(path)' is busy (executing '\(sql)')" }
        return "executing SQLite statement '\(sql)': \(message) (in '\(path)')"
    }

    static let opening = "opening"

    /// The primary result code (the extended code's low byte).
    var primaryCode: Int32 { code & 0xff }
    /// The file is damaged or is not a database at all: worth moving aside and rebuilding.
    var isBusy: Bool { primaryCode == SQLITE_BUSY }
    var isCorruption: Bool { primaryCode == SQLITE_CORRUPT || primaryCode == SQLITE_NOTADB }
    /// A generic SQL error, as when a statement names a table or column the file lacks.
    var isSchemaMismatch: Bool { primaryCode == SQLITE_ERROR }
}

/// A value to bind to a statement parameter.
enum SQLiteValue {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null
}

/// One connection to a database file, with a cache of prepared statements.
/// Not thread-safe: its owner serialises access (NarInfoCache holds a lock).
final class SQLiteConnection {
    private var db: OpaquePointer?
    let path: String
    private var statements: [String: SQLiteStatement] = [:]

    /// Opens (creating if needed) the file at `path`. Threading is left to the owner's lock.
    init(path: String) throws(SQLiteError) {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(handle)
            throw SQLiteError(code: rc, message: message, sql: SQLiteError.opening, path: path)
        }
        sqlite3_extended_result_codes(handle, 1)
        db = handle
    }

    deinit { close() }

    /// Finalises every cached statement and closes the connection (idempotent).
    func close() {
        for statement in statements.values { statement.finalize() }
        statements = [:]
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    /// How long a writer waits for another connection's lock before failing with SQLITE_BUSY.
    func setBusyTimeout(milliseconds: Int32) throws(SQLiteError) {
        try check(sqlite3_busy_timeout(db, milliseconds), "setting busy timeout")
    }

    /// Runs one or more statements without results.
    func exec(_ sql: String) throws(SQLiteError) {
        try check(sqlite3_exec(db, sql, nil, nil, nil), sql)
    }

    /// A cached prepared statement for `sql`, reset.
    func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        var stmt: OpaquePointer?
        try check(sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil), sql)
        guard let stmt else { throw error(SQLITE_MISUSE, sql) }
        let statement = SQLiteStatement(stmt: stmt, connection: self, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// Runs `sql` with `values` bound, ignoring any rows.
    func run(_ sql: String, _ values: SQLiteValue...) throws(SQLiteError) {
        let s = try statement(sql)
        try s.bind(values)
        while try s.step() {}
        s.reset()
    }

    /// The first column of the first row of `sql` as an integer, or nil when there is no row.
    func scalar(_ sql: String, _ values: SQLiteValue...) throws(SQLiteError) -> Int64? {
        let s = try statement(sql)
        try s.bind(values)
        defer { s.reset() }
        return try s.step() ? s.int64(0) : nil
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    /// `immediate` takes the write lock up front, so a writer waits (busy timeout) instead of
    /// failing when upgrading a read lock.
    func transaction<T>(immediate: Bool, _ body: () throws -> T) throws -> T {
        try exec(immediate ? "begin immediate" : "begin")
        do {
            let result = try body()
            try exec("commit")
            return result
        } catch {
            try? exec("rollback")
            throw error
        }
    }

    /// `PRAGMA user_version`: the schema version this project stores in the file header.
    func userVersion() throws(SQLiteError) -> Int64 {
        try scalar("pragma user_version") ?? 0
    }

    func setUserVersion(_ version: Int64) throws(SQLiteError) {
        try exec("pragma user_version = \(version)")
    }

    /// Rows changed by the last insert, update or delete.
    var changes: Int64 { Int64(sqlite3_changes64(db)) }

    func check(_ rc: Int32, _ sql: String) throws(SQLiteError) {
        if rc != SQLITE_OK { throw error(rc, sql) }
    }

    func error(_ rc: Int32, _ sql: String) -> SQLiteError {
        let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        let code = db.map { sqlite3_extended_errcode($0) } ?? rc
        return SQLiteError(code: code == SQLITE_OK ? rc : code, message: message, sql: sql, path: path)
    }
}

/// A prepared statement owned by a connection's cache.
final class SQLiteStatement {
    private var stmt: OpaquePointer?
    private unowned let connection: SQLiteConnection
    let sql: String

    fileprivate init(stmt: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.stmt = stmt
        self.connection = connection
        self.sql = sql
    }

    fileprivate func finalize() {
        sqlite3_finalize(stmt)
        stmt = nil
    }

    /// Ends any running step, keeping the bindings (every use binds all parameters anew).
    /// sqlite3_reset repeats the last step's error, which was already reported, so its result
    /// is ignored.
    func reset() {
        sqlite3_reset(stmt)
    }

    /// Runs the statement with `values` bound, ignoring any rows.
    func run(_ values: SQLiteValue...) throws(SQLiteError) {
        reset()
        try bind(values)
        while try step() {}
        reset()
    }

    func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        for (i, value) in values.enumerated() { try bind(Int32(i + 1), value) }
    }

    /// Binds one parameter (1-based). Text and blobs are copied (SQLITE_TRANSIENT).
    func bind(_ index: Int32, _ value: SQLiteValue) throws(SQLiteError) {
        let rc: Int32
        switch value {
        case .integer(let v):
            rc = sqlite3_bind_int64(stmt, index, v)
        case .null:
            rc = sqlite3_bind_null(stmt, index)
        case .text(var s):
            rc = s.withUTF8 { buf in
                // A nil pointer would bind NULL, so an empty string gets a real one.
                guard let base = buf.baseAddress else { return nb_sqlite_bind_text(stmt, index, "", 0) }
                return base.withMemoryRebound(to: CChar.self, capacity: buf.count) {
                    nb_sqlite_bind_text(stmt, index, $0, Int32(buf.count))
                }
            }
        case .blob(let bytes):
            rc = bytes.withUnsafeBytes { buf in
                guard let base = buf.baseAddress else { return sqlite3_bind_zeroblob(stmt, index, 0) }
                return nb_sqlite_bind_blob(stmt, index, base, Int32(buf.count))
            }
        }
        try connection.check(rc, sql)
    }

    /// Advances to the next row: true when there is one, false when done.
    func step() throws(SQLiteError) -> Bool {
        switch sqlite3_step(stmt) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc: throw connection.error(rc, sql)
        }
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(stmt, column) == SQLITE_NULL }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(stmt, column) }

    /// Calls `body` with the column's UTF-8 bytes in place (valid only during the call).
    func withText<T>(_ column: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        let p = sqlite3_column_text(stmt, column)
        return body(UnsafeBufferPointer(start: p, count: p == nil ? 0 : Int(sqlite3_column_bytes(stmt, column))))
    }

    /// The column's bytes, or nil when it is NULL.
    func blob(_ column: Int32) -> [UInt8]? {
        guard sqlite3_column_type(stmt, column) != SQLITE_NULL else { return nil }
        let count = Int(sqlite3_column_bytes(stmt, column))
        guard count > 0, let p = sqlite3_column_blob(stmt, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: count))
    }

    /// The column as UTF-8 text, or nil when it is NULL.
    func text(_ column: Int32) -> String? {
        guard let p = sqlite3_column_text(stmt, column) else { return nil }
        let count = Int(sqlite3_column_bytes(stmt, column))
        return String(decoding: UnsafeBufferPointer(start: p, count: count), as: UTF8.self)
    }
}
