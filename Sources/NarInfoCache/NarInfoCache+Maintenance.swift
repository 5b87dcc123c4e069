import Foundation

extension NarInfoCache {
    /// Counts of live and expired answers per registered store, and the size on disk.
    public func stats() throws -> Stats {
        try locked {
            let time = now()
            let s = try db.statement("""
                select c.url,
                    coalesce(sum(n.present = 1 and n.timestamp > ?1), 0),
                    coalesce(sum(n.present = 0 and n.timestamp > ?2), 0),
                    coalesce(sum((n.present = 1 and n.timestamp <= ?1) or (n.present = 0 and n.timestamp <= ?2)), 0)
                from BinaryCaches c left join NARs n on n.cache = c.id
                group by c.id order by c.url
                """)
            try s.bind(1, .integer(time - positiveTTL))
            try s.bind(2, .integer(time - negativeTTL))
            defer { s.reset() }
            var stores: [StoreStats] = []
            while try s.step() {
                stores.append(StoreStats(storeURI: s.text(0) ?? "", positive: Int(s.int64(1)),
                                         negative: Int(s.int64(2)), expired: Int(s.int64(3))))
            }
            return Stats(stores: stores, fileSize: fileSize(path) + fileSize(path + "-wal"))
        }
    }

    /// Forgets recorded answers: only the negative ones (e.g. after pushing new paths to a
    /// store), or all of them. Stores stay registered.
    public func clear(negativeOnly: Bool = false) throws {
        try locked {
            try db.transaction(immediate: true) {
                try db.run(negativeOnly ? "delete from NARs where present = 0" : "delete from NARs")
            }
        }
    }

    /// Deletes expired rows, at most once per `purgeInterval` across all processes, with
    /// Nix's floors on the TTLs so that a run with `--refresh`-like short TTLs keeps the rest.
    /// Run while opening: its scan of the whole table also finds damaged pages, which then
    /// lead to the file being rebuilt rather than failing later lookups.
    static func purgeIfDue(_ db: SQLiteConnection, now time: Int64, positiveTTL: Int64, negativeTTL: Int64) throws {
        try db.transaction(immediate: true) {
            if let last = try db.scalar("select value from LastPurge"), last >= time - purgeInterval {
                return
            }
            try db.run("delete from NARs where ((present = 0 and timestamp < ?) or (present = 1 and timestamp < ?))",
                       .integer(time - max(negativeTTL, defaultNegativeTTL)),
                       .integer(time - max(positiveTTL, defaultPositiveTTL)))
            try db.run("insert or replace into LastPurge(dummy, value) values ('', ?)", .integer(time))
        }
    }

    private func fileSize(_ path: String) -> Int64 {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        return (attributes?[.size] as? NSNumber)?.int64Value ?? 0
    }
}
