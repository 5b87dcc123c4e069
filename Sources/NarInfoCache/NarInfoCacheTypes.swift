extension NarInfoCache {
    /// The answer the cache holds for one (store, hash part), as Nix's
    /// NarInfoDiskCache::Outcome (oValid, oInvalid, oUnknown).
    public enum Outcome: Sendable, Equatable {
        /// The store has the path: its narinfo text, written `age` seconds ago.
        case hit(narInfoText: String, age: Int64)
        /// The store said it does not have the path, less than the negative TTL ago.
        case missing
        /// Nothing known, or the answer has expired: ask the store.
        case unknown
    }

    /// What a store said about itself (its nix-cache-info), as Nix's BinaryCaches row.
    public struct CacheInfo: Sendable, Equatable {
        /// The store's `StoreDir`, e.g. `/nix/store`.
        public var storeDir: String
        /// `WantMassQuery`: whether querying many paths at once is welcome.
        public var wantMassQuery: Bool
        /// `Priority`: lower is preferred.
        public var priority: Int

        public init(storeDir: String, wantMassQuery: Bool, priority: Int) {
            self.storeDir = storeDir
            self.wantMassQuery = wantMassQuery
            self.priority = priority
        }
    }

    /// Counts of rows for one store.
    public struct StoreStats: Sendable, Equatable {
        /// The store's URI, as registered.
        public var storeURI: String
        /// Positive answers still within the positive TTL.
        public var positive: Int
        /// Negative answers still within the negative TTL.
        public var negative: Int
        /// Answers past their TTL (read as unknown) not yet purged.
        public var expired: Int
    }

    /// What the cache holds, per store, and its size on disk.
    public struct Stats: Sendable, Equatable {
        /// One entry per known store, sorted by URI.
        public var stores: [StoreStats]
        /// Bytes of the database file plus its write-ahead log.
        public var fileSize: Int64
    }

    /// Why an existing file was moved aside when the cache was opened.
    public enum RecoveryReason: Error, Sendable, CustomStringConvertible {
        /// Not a database, or a damaged one.
        case corrupt(SQLiteError)
        /// A database made by something else (other tables, no version, columns that differ).
        case foreign(String)
        /// A database of a newer schema version than this code knows.
        case newerVersion(Int64)

        public var description: String {
            switch self {
            case .corrupt(let error): "corrupt: \(error)"
            case .foreign(let why): "not a nix-bridge narinfo cache: \(why)"
            case .newerVersion(let v): "schema version \(v) is newer than \(NarInfoCacheSchema.currentVersion)"
            }
        }

        var suffix: String {
            switch self {
            case .corrupt: "corrupt"
            case .foreign: "foreign"
            case .newerVersion: "newer"
            }
        }
    }

    /// A file that was moved aside and replaced by a fresh cache.
    public struct Recovery: Sendable, CustomStringConvertible {
        public var reason: RecoveryReason
        /// Where the old file now is (`<path>.<reason>-<timestamp>`).
        public var movedTo: String

        public var description: String { "moved aside to '\(movedTo)' (\(reason))" }
    }
}

/// A request the cache cannot carry out.
public enum NarInfoCacheError: Error, Sendable, CustomStringConvertible {
    /// An answer was written for a store that was never registered with `createCache`.
    case unknownStore(uri: String, path: String)
    /// A narinfo text above the size bound.
    case narInfoTooLarge(uri: String, hashPart: String, size: Int, limit: Int)

    public var description: String {
        switch self {
        case .unknownStore(let uri, let path):
            "binary cache '\(uri)' is not registered in the narinfo cache '\(path)'"
        case .narInfoTooLarge(let uri, let hashPart, let size, let limit):
            "narinfo for '\(hashPart)' from '\(uri)' is \(size) bytes, more than the \(limit) allowed"
        }
    }
}
