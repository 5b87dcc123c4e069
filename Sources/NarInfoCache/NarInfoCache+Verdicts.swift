extension NarInfoCache {
    /// A judgement the layer above made on one positive answer (e.g. which trusted keys
    /// verified its signatures), kept beside the narinfo text so a later lookup need not make
    /// it again. It holds only under `key`, a digest of whatever it depends on (e.g. the
    /// trusted keys and sigs-needed): reads under another key do not see it. Replacing the
    /// answer drops it. The cache does not interpret either string.
    public struct Verdict: Sendable, Equatable {
        public var key: String
        public var value: String

        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// A positive answer to record, with the verdict made on it and the layer above's
    /// compact form of its fields (opaque here), if any.
    public struct Entry: Sendable {
        public var hashPart: String
        public var narInfoText: String
        public var verdict: Verdict?
        public var record: [UInt8]?

        public init(hashPart: String, narInfoText: String, verdict: Verdict? = nil, record: [UInt8]? = nil) {
            self.hashPart = hashPart
            self.narInfoText = narInfoText
            self.verdict = verdict
            self.record = record
        }
    }

    /// A positive answer as read back.
    public struct Hit: Sendable, Equatable {
        /// The narinfo text; not read (nil) when the answer has a record and a verdict under
        /// the key asked for, as then the layer above needs neither the text nor to judge it.
        public var narInfoText: String?
        /// Seconds since the answer was recorded.
        public var age: Int64
        /// The verdict recorded under the key asked for; nil if none was (under that key).
        public var verdict: String?
        /// The compact form recorded with the text, if any.
        public var record: [UInt8]?

        public init(narInfoText: String?, age: Int64, verdict: String? = nil, record: [UInt8]? = nil) {
            self.narInfoText = narInfoText
            self.age = age
            self.verdict = verdict
            self.record = record
        }
    }

    /// What is known about one path, with the verdict made under the key asked for.
    public enum Answer: Sendable, Equatable {
        case hit(Hit)
        case missing
        case unknown
    }

    /// Records a store's answers in one transaction (all or none): positive ones with their
    /// verdicts, and the hash parts it does not have.
    public func record(storeURI: String, entries: [Entry], missing: [String]) throws {
        try locked {
            let id = try requireCacheID(storeURI)
            let time = now()
            try db.transaction(immediate: true) {
                for e in entries {
                    try insertLocked(cache: id, storeURI: storeURI, hashPart: e.hashPart, narInfoText: e.narInfoText,
                                     verdict: e.verdict, record: e.record, at: time)
                }
                let s = statements.insertMissingNAR
                for hashPart in missing {
                    try s.run(.integer(id), .text(hashPart), .integer(time))
                }
            }
        }
    }

    /// Adds verdicts made under `key` to answers already recorded, each only if its narinfo
    /// text is still the one judged (another process may have replaced it meanwhile).
    public func recordVerdicts(storeURI: String, key: String,
                               _ verdicts: [(hashPart: String, narInfoText: String, value: String)]) throws {
        guard !verdicts.isEmpty else { return }
        try locked {
            guard let id = try cacheID(storeURI) else { return }
            try db.transaction(immediate: true) {
                let s = statements.updateVerdict
                for v in verdicts {
                    try s.run(.text(key), .text(v.value), .integer(id), .text(v.hashPart), .text(v.narInfoText))
                }
            }
        }
    }

    /// Looks many paths up in one read transaction, with the verdicts recorded under
    /// `verdictKey`; the answers are in the order of `hashParts`. A batch is read in one
    /// statement: one pass over the store's rows when it asks for at least a quarter of them
    /// (in table order if the store has at least a quarter of the table, else through the
    /// index), else one index probe per hash part inside SQLite (`json_each`).
    public func answers(storeURI: String, hashParts: [String], verdictKey: String) throws -> [Answer] {
        try locked {
            guard let id = try cacheID(storeURI) else { return Array(repeating: .unknown, count: hashParts.count) }
            let time = now()
            return try db.transaction(immediate: false) {
                // Batches need every hash part in the inline form (store path hash parts all are).
                if hashParts.count >= Self.batchReadThreshold, hashParts.allSatisfy({ HashPartKey($0) != nil }) {
                    // Asked for a good part of what the store has: one pass over its rows beats
                    // an index probe per hash part.
                    let rows = try db.scalar(Statements.countNARs, .integer(id)) ?? 0
                    if Int64(hashParts.count) * 4 >= rows {
                        // In table order when that reads at most 4 times the store's own rows.
                        let table = rows * 4 >= (try db.scalar(Statements.maxRowID) ?? 0)
                        return try scanAnswersLocked(cache: id, hashParts: hashParts, verdictKey: verdictKey,
                                                     tableOrder: table, at: time)
                    }
                    if let json = Self.jsonArray(hashParts) {
                        return try batchAnswersLocked(cache: id, hashParts: hashParts, json: json,
                                                      verdictKey: verdictKey, at: time)
                    }
                }
                return try hashParts.map { try answerLocked(cache: id, hashPart: $0, verdictKey: verdictKey, at: time) }
            }
        }
    }

    /// From this many hash parts on, one statement reads them all.
    static let batchReadThreshold = 32

    /// The hash parts as a JSON array, or nil if one needs escaping (hash parts never do;
    /// anything else takes the point look-ups).
    static func jsonArray(_ hashParts: [String]) -> String? {
        var out = "["
        out.reserveCapacity(hashParts.count * 35 + 2)
        for (i, h) in hashParts.enumerated() {
            guard h.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") })
            else { return nil }
            if i > 0 { out += "," }
            out += "\""
            out += h
            out += "\""
        }
        return out + "]"
    }

    private func scanAnswersLocked(cache id: Int64, hashParts: [String], verdictKey: String, tableOrder: Bool,
                                   at time: Int64) throws -> [Answer] {
        let s = tableOrder ? statements.scanNARsTable : statements.scanNARs
        s.reset()
        try s.bind(1, .integer(id))
        try s.bind(3, .integer(time - negativeTTL))
        try s.bind(4, .integer(time - positiveTTL))
        try s.bind(5, .text(verdictKey))
        return try collect(s, hashParts: hashParts, at: time)
    }

    private func batchAnswersLocked(cache id: Int64, hashParts: [String], json: String,
                                    verdictKey: String, at time: Int64) throws -> [Answer] {
        let s = statements.queryNARsBatch
        s.reset()
        try s.bind(1, .integer(id))
        try s.bind(2, .text(json))
        try s.bind(3, .integer(time - negativeTTL))
        try s.bind(4, .integer(time - positiveTTL))
        try s.bind(5, .text(verdictKey))
        return try collect(s, hashParts: hashParts, at: time)
    }

    /// The answers among the rows `s` yields, in the order of `hashParts` (rows for other
    /// hash parts are skipped).
    private func collect(_ s: SQLiteStatement, hashParts: [String], at time: Int64) throws -> [Answer] {
        // Keyed by the hash part's 32 bytes held inline: no string is made per row read.
        var position: [HashPartKey: Int] = [:]
        position.reserveCapacity(hashParts.count)
        for (i, h) in hashParts.enumerated() {
            if let key = HashPartKey(h), position[key] == nil { position[key] = i }
        }
        var out = [Answer](repeating: .unknown, count: hashParts.count)
        defer { s.reset() }
        while try s.step() {
            guard let i = s.withText(0, { HashPartKey($0) }).flatMap({ position[$0] }) else { continue }
            out[i] = s.int64(1) == 0 ? .missing : .hit(Self.hit(s, at: time))
        }
        // A hash part asked twice gets the same answer twice.
        if position.count < hashParts.count {
            for (i, h) in hashParts.enumerated() { out[i] = out[position[HashPartKey(h)!]!] }
        }
        return out
    }

    private func answerLocked(cache id: Int64, hashPart: String, verdictKey: String, at time: Int64) throws -> Answer {
        let s = statements.queryNARVerdict
        s.reset()
        try s.bind(1, .integer(id))
        try s.bind(2, .text(hashPart))
        try s.bind(3, .integer(time - negativeTTL))
        try s.bind(4, .integer(time - positiveTTL))
        try s.bind(5, .text(verdictKey))
        defer { s.reset() }
        guard try s.step() else { return .unknown }
        guard s.int64(1) != 0 else { return .missing }
        return .hit(Self.hit(s, at: time))
    }

    private static func hit(_ s: SQLiteStatement, at time: Int64) -> Hit {
        Hit(narInfoText: s.text(2), age: time - s.int64(3), verdict: s.text(4), record: s.blob(5))
    }
}

/// A store path hash part (32 Nix32 characters) held inline, for hashing without allocating.
struct HashPartKey: Hashable {
    private var a, b, c, d: UInt64

    init?(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count == 32 else { return nil }
        func word(_ at: Int) -> UInt64 {
            var w: UInt64 = 0
            for i in 0..<8 { w |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
            return w
        }
        (a, b, c, d) = (word(0), word(8), word(16), word(24))
    }

    init?(_ string: String) {
        var s = string
        guard let key = s.withUTF8({ HashPartKey($0) }) else { return nil }
        self = key
    }
}
