/// The SQL the cache runs; all prepared (and so checked against the file) when it opens.
enum Statements {
    // Upsert rather than Nix's "insert or replace": replacing would give the store a new id
    // and cascade-delete its NARs rows under other processes that still use the old id.
    static let upsertCache = """
        insert into BinaryCaches(url, timestamp, storeDir, wantMassQuery, priority) values (?, ?, ?, ?, ?)
        on conflict(url) do update set timestamp = excluded.timestamp, storeDir = excluded.storeDir,
            wantMassQuery = excluded.wantMassQuery, priority = excluded.priority
        """
    static let queryCache = "select id, storeDir, wantMassQuery, priority from BinaryCaches where url = ?"
    static let insertNAR = """
        insert or replace into NARs(cache, hashPart, namePart, narHash, narSize, narInfo, timestamp, present,
            verdictKey, verdict, record)
            values (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
        """
    static let insertMissingNAR =
        "insert or replace into NARs(cache, hashPart, timestamp, present) values (?, ?, ?, 0)"
    static let queryNAR = """
        select present, narInfo, timestamp from NARs where cache = ? and hashPart = ?
            and ((present = 0 and timestamp > ?) or (present = 1 and timestamp > ?))
        """

    /// What `answers` reads of a row: the verdict only when it was made under the key asked
    /// for (?5), the text only when the record and such a verdict do not make it unneeded.
    static let answerColumns = """
        hashPart, present, case when record is null or verdict is null or verdictKey is not ?5 then narInfo end,
            timestamp, case when verdictKey = ?5 then verdict end, record
        """
    /// Only rows still within their TTL (?3 negative, ?4 positive).
    static let queryNARVerdict = """
        select \(answerColumns) from NARs
            where cache = ?1 and hashPart = ?2
            and ((present = 0 and timestamp > ?3) or (present = 1 and timestamp > ?4))
        """
    static let queryNARsBatch = """
        select \(answerColumns) from NARs
            where cache = ?1 and hashPart in (select value from json_each(?2))
            and ((present = 0 and timestamp > ?3) or (present = 1 and timestamp > ?4))
        """
    /// Every live row of one store, through the (cache, hashPart) index so that other
    /// stores' rows are not read (for batches that cover much of the store).
    static let scanNARs = """
        select \(answerColumns) from NARs
            where cache = ?1 and ((present = 0 and timestamp > ?3) or (present = 1 and timestamp > ?4))
        """
    /// The same in table order, reading every store's rows: cheaper (no index walk, no seek
    /// per row) when the store holds a good part of the table.
    static let scanNARsTable = """
        select \(answerColumns) from NARs not indexed
            where cache = ?1 and ((present = 0 and timestamp > ?3) or (present = 1 and timestamp > ?4))
        """
    /// An upper bound on the table's rows, read from the end of the table (no scan).
    static let maxRowID = "select max(rowid) from NARs"
    static let countNARs = "select count(*) from NARs where cache = ?"
    static let updateVerdict = """
        update NARs set verdictKey = ?1, verdict = ?2
            where cache = ?3 and hashPart = ?4 and present = 1 and narInfo = ?5
        """

    /// The statements above, prepared once per connection.
    struct Prepared {
        let upsertCache, queryCache, insertNAR, insertMissingNAR, queryNAR: SQLiteStatement
        let queryNARVerdict, queryNARsBatch, scanNARs, scanNARsTable, updateVerdict: SQLiteStatement
    }
}

extension NarInfoCache {
    /// Registers a store (its nix-cache-info) so answers can be recorded for it; registering
    /// again updates the info and keeps the answers.
    public func createCache(storeURI: String, info: CacheInfo) throws {
        try locked {
            try statements.upsertCache.run(.text(storeURI), .integer(now()), .text(info.storeDir),
                                           .integer(info.wantMassQuery ? 1 : 0), .integer(Int64(info.priority)))
            cacheIDs[storeURI] = try db.scalar("select id from BinaryCaches where url = ?", .text(storeURI))
        }
    }

    /// The registered info of a store, or nil if it was never registered.
    public func cacheExists(storeURI: String) throws -> CacheInfo? {
        try locked {
            let s = statements.queryCache
            s.reset()
            try s.bind(1, .text(storeURI))
            defer { s.reset() }
            guard try s.step() else { return nil }
            cacheIDs[storeURI] = s.int64(0)
            return CacheInfo(storeDir: s.text(1) ?? "", wantMassQuery: s.int64(2) != 0, priority: Int(s.int64(3)))
        }
    }

    /// Records that `storeURI` has the path with `hashPart`, with its narinfo text.
    public func insert(storeURI: String, hashPart: String, narInfoText: String) throws {
        try locked {
            let id = try requireCacheID(storeURI)
            try insertLocked(cache: id, storeURI: storeURI, hashPart: hashPart, narInfoText: narInfoText,
                             verdict: nil, at: now())
        }
    }

    /// Records that `storeURI` does not have the path with `hashPart`.
    public func insertMissing(storeURI: String, hashPart: String) throws {
        try locked {
            let id = try requireCacheID(storeURI)
            try statements.insertMissingNAR.run(.integer(id), .text(hashPart), .integer(now()))
        }
    }

    /// What is known about `hashPart` in `storeURI` now.
    public func lookup(storeURI: String, hashPart: String) throws -> Outcome {
        try locked {
            guard let id = try cacheID(storeURI) else { return .unknown }
            return try lookupLocked(cache: id, hashPart: hashPart, at: now())
        }
    }

    /// Records many positive answers in one transaction (all or none).
    public func insert(storeURI: String, entries: some Sequence<(hashPart: String, narInfoText: String)>) throws {
        try locked {
            let id = try requireCacheID(storeURI)
            let time = now()
            try db.transaction(immediate: true) {
                for entry in entries {
                    try insertLocked(cache: id, storeURI: storeURI, hashPart: entry.hashPart,
                                     narInfoText: entry.narInfoText, verdict: nil, at: time)
                }
            }
        }
    }

    /// Records many negative answers in one transaction (all or none).
    public func insertMissing(storeURI: String, hashParts: some Sequence<String>) throws {
        try locked {
            let id = try requireCacheID(storeURI)
            let time = now()
            try db.transaction(immediate: true) {
                let s = statements.insertMissingNAR
                for hashPart in hashParts {
                    s.reset()
                    try s.bind(1, .integer(id))
                    try s.bind(2, .text(hashPart))
                    try s.bind(3, .integer(time))
                    while try s.step() {}
                }
                s.reset()
            }
        }
    }

    /// Looks many paths up in one read transaction (one consistent snapshot); the outcomes
    /// are in the order of `hashParts`.
    public func lookup(storeURI: String, hashParts: [String]) throws -> [Outcome] {
        try locked {
            guard let id = try cacheID(storeURI) else { return Array(repeating: .unknown, count: hashParts.count) }
            let time = now()
            return try db.transaction(immediate: false) {
                try hashParts.map { try lookupLocked(cache: id, hashPart: $0, at: time) }
            }
        }
    }

    // MARK: - Under the lock

    func cacheID(_ storeURI: String) throws(SQLiteError) -> Int64? {
        if let id = cacheIDs[storeURI] { return id }
        // Another process may have registered it since we opened.
        let id = try db.scalar(Statements.queryCache, .text(storeURI))
        if let id { cacheIDs[storeURI] = id }
        return id
    }

    func requireCacheID(_ storeURI: String) throws -> Int64 {
        guard let id = try cacheID(storeURI) else {
            throw NarInfoCacheError.unknownStore(uri: storeURI, path: path)
        }
        return id
    }

    func insertLocked(cache id: Int64, storeURI: String, hashPart: String, narInfoText: String,
                      verdict: Verdict?, record: [UInt8]? = nil, at time: Int64) throws {
        guard narInfoText.utf8.count <= Self.maxNarInfoSize else {
            throw NarInfoCacheError.narInfoTooLarge(uri: storeURI, hashPart: hashPart,
                                                    size: narInfoText.utf8.count, limit: Self.maxNarInfoSize)
        }
        let fields = NarInfoFields(scanning: narInfoText)
        let s = statements.insertNAR
        s.reset()
        try s.bind(1, .integer(id))
        try s.bind(2, .text(hashPart))
        try s.bind(3, fields.namePart.map(SQLiteValue.text) ?? .null)
        try s.bind(4, fields.narHash.map(SQLiteValue.text) ?? .null)
        try s.bind(5, fields.narSize.map(SQLiteValue.integer) ?? .null)
        try s.bind(6, .text(narInfoText))
        try s.bind(7, .integer(time))
        try s.bind(8, verdict.map { .text($0.key) } ?? .null)
        try s.bind(9, verdict.map { .text($0.value) } ?? .null)
        try s.bind(10, record.map(SQLiteValue.blob) ?? .null)
        while try s.step() {}
        s.reset()
    }

    private func lookupLocked(cache id: Int64, hashPart: String, at time: Int64) throws(SQLiteError) -> Outcome {
        let s = statements.queryNAR
        s.reset()
        try s.bind(1, .integer(id))
        try s.bind(2, .text(hashPart))
        try s.bind(3, .integer(time - negativeTTL))
        try s.bind(4, .integer(time - positiveTTL))
        defer { s.reset() }
        guard try s.step() else { return .unknown }
        guard s.int64(0) != 0 else { return .missing }
        return .hit(narInfoText: s.text(1) ?? "", age: time - s.int64(2))
    }
}
