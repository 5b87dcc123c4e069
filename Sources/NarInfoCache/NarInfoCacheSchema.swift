/// The cache file's tables, their versions (`PRAGMA user_version`) and the migrations between
/// them. The layout follows Nix's binary-cache-v6.sqlite (BinaryCaches, NARs, LastPurge) but
/// keeps the narinfo text whole instead of one column per field.
enum NarInfoCacheSchema {
    /// The version this code writes. Files with a higher one belong to a newer nix-bridge.
    static let currentVersion: Int64 = 3

    /// Tables this project creates; any other (non-`sqlite_`) table marks a foreign file.
    static let knownTables: Set<String> = ["BinaryCaches", "NARs", "LastPurge"]

    /// Version 1: the first layout, with the narinfo text but no narHash/narSize columns
    /// and no purge bookkeeping. Kept so that migration from it can be tested.
    static let version1 = """
        create table if not exists BinaryCaches (
            id            integer primary key autoincrement not null,
            url           text unique not null,
            timestamp     integer not null,
            storeDir      text not null,
            wantMassQuery integer not null,
            priority      integer not null
        );
        create table if not exists NARs (
            cache     integer not null,
            hashPart  text not null,
            namePart  text,
            narInfo   text,
            timestamp integer not null,
            present   integer not null,
            primary key (cache, hashPart),
            foreign key (cache) references BinaryCaches(id) on delete cascade
        );
        """

    /// Version 1 to 2: narHash and narSize columns (filled from the stored text) and the
    /// LastPurge row that spaces out purges of expired rows.
    static let version1To2 = """
        alter table NARs add column narHash text;
        alter table NARs add column narSize integer;
        create table if not exists LastPurge (
            dummy text primary key,
            value integer
        );
        """

    /// Version 2 to 3: the trust verdict the layer above made on a positive answer
    /// (`verdict`), the digest of the settings it was made under (`verdictKey`), and the
    /// answer's fields in the layer above's compact form (`record`, read instead of parsing
    /// the text). Rows from version 2 have none of them: they are judged and parsed afresh.
    static let version2To3 = """
        alter table NARs add column verdictKey text;
        alter table NARs add column verdict text;
        alter table NARs add column record blob;
        """

    /// Why an existing file cannot be used as it is.
    enum Mismatch: Error {
        case foreign(String)
        case newer(Int64)
    }

    /// Brings the file (inside the caller's write transaction) to `currentVersion`: creates
    /// it when empty, migrates an older version, or reports a file that is not ours.
    static func ensure(_ db: SQLiteConnection) throws {
        let version = try db.userVersion()
        let tables = try tableNames(db)
        if version > currentVersion { throw Mismatch.newer(version) }
        let unknown = tables.subtracting(knownTables)
        if !unknown.isEmpty {
            throw Mismatch.foreign("unexpected tables \(unknown.sorted().joined(separator: ", "))")
        }
        if version == 0 && !tables.isEmpty {
            throw Mismatch.foreign("tables \(tables.sorted().joined(separator: ", ")) without a schema version")
        }
        if version < 1 {
            try db.exec(version1)
        }
        if version < 2 {
            try db.exec(version1To2)
            try backfillNarColumns(db)
        }
        if version < 3 {
            try db.exec(version2To3)
        }
        if version < currentVersion { try db.setUserVersion(currentVersion) }
    }

    private static func tableNames(_ db: SQLiteConnection) throws(SQLiteError) -> Set<String> {
        let s = try db.statement("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")
        defer { s.reset() }
        var names: Set<String> = []
        while try s.step() { if let name = s.text(0) { names.insert(name) } }
        return names
    }

    /// Fills narHash and narSize of positive rows written by version 1 from their text.
    private static func backfillNarColumns(_ db: SQLiteConnection) throws(SQLiteError) {
        let select = try db.statement("select rowid, narInfo from NARs where present = 1 and narInfo is not null")
        var updates: [(Int64, NarInfoFields)] = []
        while try select.step() {
            updates.append((select.int64(0), NarInfoFields(scanning: select.text(1) ?? "")))
        }
        select.reset()
        for (rowid, fields) in updates {
            try db.run("update NARs set narHash = ?, narSize = ? where rowid = ?",
                       fields.narHash.map(SQLiteValue.text) ?? .null,
                       fields.narSize.map(SQLiteValue.integer) ?? .null,
                       .integer(rowid))
        }
    }
}
