import NixCore

/// Reads worker-protocol values from a growable input buffer. Callers `feed` chunks as they
/// arrive and parse with `attempt`, which rewinds and returns nil when the input stops short,
/// so nothing is consumed until a whole value is there. Every length read is bounded by
/// `limits`, and so is what one `attempt` may wait for (`maxMessageLength`). A value that may
/// be large (a list of a million paths) is read item by item instead (`ListProgress`), so
/// the bytes it arrived in are parsed once, not again from its start on every chunk.
public struct WireReader: Sendable {
    private var buffer: [UInt8] = []
    /// Index of the next unread byte in `buffer`.
    private var position = 0
    public var limits: WireLimits
    /// Bytes parsed so far, counting those parsed again after a rewind: what reading cost,
    /// for tests that check it stays linear in what arrived.
    public internal(set) var bytesParsed = 0

    public init(limits: WireLimits = .default) { self.limits = limits }

    public init(_ bytes: [UInt8], limits: WireLimits = .default) {
        self.buffer = bytes
        self.limits = limits
    }

    /// Appends bytes that just arrived.
    public mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        // Nothing left unread: keep an incoming array as it is (a NAR chunk then leaves
        // through `takeAvailable` without having been copied).
        if position == buffer.count, let whole = bytes as? [UInt8] {
            buffer = whole
            position = 0
            return
        }
        // Drop what was consumed once it dominates, so a long conversation stays small.
        if position > 0 && position >= buffer.count / 2 {
            buffer.removeFirst(position)
            position = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Bytes fed but not yet consumed.
    public var unreadCount: Int { buffer.count - position }

    public var isAtEnd: Bool { position == buffer.count }

    /// Runs `body`; if the input ends inside it, rewinds to where it began and returns nil.
    /// Other errors propagate (and also leave the position where it began). `already` bytes of
    /// the same message were consumed before (by earlier items of a list read item by item):
    /// a message whose bytes so far exceed `limits.maxMessageLength` throws `messageTooLong`
    /// rather than waiting for more.
    public mutating func attempt<T>(reading what: @autoclosure () -> String = "a message", already: Int = 0,
                                    _ body: (inout WireReader) throws(WireError) -> T) throws(WireError) -> T? {
        let start = position
        do {
            return try body(&self)
        } catch .truncated {
            position = start
            let held = already + unreadCount
            if held > limits.maxMessageLength {
                throw .messageTooLong(reading: what(), length: held, limit: limits.maxMessageLength)
            }
            return nil
        } catch {
            position = start
            throw error
        }
    }

    /// Takes up to `max` unread bytes, consuming them.
    public mutating func takeAvailable(max: Int = .max) -> ArraySlice<UInt8> {
        let n = Swift.min(max, unreadCount)
        defer { position += n }
        return buffer[position..<position + n]
    }

    /// Takes all unread bytes.
    public mutating func takeAll() -> [UInt8] { Array(takeAvailable()) }

    // MARK: Primitives

    public mutating func readU64(_ what: @autoclosure () -> String) throws(WireError) -> UInt64 {
        guard unreadCount >= 8 else { throw .truncated(reading: what()) }
        bytesParsed += 8
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(buffer[position + i]) << (8 * UInt64(i)) }
        position += 8
        return v
    }

    /// A number that must fit an Int (sizes, counts, time stamps).
    public mutating func readInt(_ what: @autoclosure () -> String) throws(WireError) -> Int {
        let v = try readU64(what())
        guard v <= UInt64(Int.max) else { throw .badNumber(reading: what(), value: v) }
        return Int(v)
    }

    public mutating func readInt64(_ what: @autoclosure () -> String) throws(WireError) -> Int64 {
        Int64(bitPattern: try readU64(what()))
    }

    /// Booleans are u64 0 or 1; Nix itself treats any non-zero as true, and so do we.
    public mutating func readBool(_ what: @autoclosure () -> String) throws(WireError) -> Bool {
        try readU64(what()) != 0
    }

    /// A byte string: length, bytes, zero padding to 8.
    public mutating func readBytes(_ what: @autoclosure () -> String) throws(WireError) -> [UInt8] {
        let n = try readU64(what())
        guard n <= UInt64(limits.maxStringLength) else {
            throw .stringTooLong(reading: what(), length: n, limit: limits.maxStringLength)
        }
        let len = Int(n)
        let padded = (len + 7) & ~7
        guard unreadCount >= padded else { throw .truncated(reading: what()) }
        bytesParsed += padded
        let out = Array(buffer[position..<position + len])
        for i in (position + len)..<(position + padded) where buffer[i] != 0 {
            throw .nonZeroPadding(reading: what())
        }
        position += padded
        return out
    }

    public mutating func readString(_ what: @autoclosure () -> String) throws(WireError) -> String {
        String(decoding: try readBytes(what()), as: UTF8.self)
    }

    /// A list count, bounded by `limits.maxListCount`.
    public mutating func readCount(_ what: @autoclosure () -> String) throws(WireError) -> Int {
        let n = try readU64(what())
        guard n <= UInt64(limits.maxListCount) else {
            throw .tooManyItems(reading: what(), count: n, limit: limits.maxListCount)
        }
        return Int(n)
    }

    public mutating func readList<T>(_ what: @autoclosure () -> String,
                                     _ item: (inout WireReader) throws(WireError) -> T) throws(WireError) -> [T] {
        let label = what()
        let n = try readCount(label)
        var out = [T]()
        // Reserve no more than the bytes present could hold: a lying count cannot allocate.
        out.reserveCapacity(Swift.min(n, unreadCount / 8))
        for _ in 0..<n { out.append(try item(&self)) }
        return out
    }

    public mutating func readStrings(_ what: @autoclosure () -> String) throws(WireError) -> [String] {
        let label = what()
        return try readList(label) { (r: inout WireReader) throws(WireError) in try r.readString(label + " item") }
    }

    public mutating func readStringMap(_ what: @autoclosure () -> String) throws(WireError) -> [String: String] {
        let label = what()
        let n = try readCount(label)
        var out = [String: String]()
        for _ in 0..<n {
            let k = try readString(label + " key")
            out[k] = try readString(label + " value")
        }
        return out
    }

    public mutating func readStorePath(_ what: @autoclosure () -> String, _ ctx: WireContext) throws(WireError) -> StorePath {
        let label = what()
        let s = try readString(label)
        do { return try ctx.storeDir.parse(s) } catch { throw .badValue(reading: label, detail: error.description) }
    }

    /// An optional store path (empty string = none).
    public mutating func readOptionalStorePath(_ what: @autoclosure () -> String, _ ctx: WireContext) throws(WireError) -> StorePath? {
        let label = what()
        let s = try readString(label)
        if s.isEmpty { return nil }
        do { return try ctx.storeDir.parse(s) } catch { throw .badValue(reading: label, detail: error.description) }
    }

    public mutating func readStorePaths(_ what: @autoclosure () -> String, _ ctx: WireContext) throws(WireError) -> [StorePath] {
        let label = what()
        return try readList(label) { (r: inout WireReader) throws(WireError) in try r.readStorePath(label + " item", ctx) }
    }
}

/// A list read item by item across chunks: the count once, then each item as its bytes
/// arrive, consumed as it is read. Keeps the items read so far and the bytes they took (for
/// the message cap).
public struct ListProgress<Item: Sendable>: Sendable {
    public private(set) var items: [Item] = []
    /// Items still to come; nil until the count was read.
    public private(set) var remaining: Int?
    /// Bytes of the message consumed so far.
    public private(set) var consumed: Int

    /// - Parameter consumed: bytes of the message before the list (its operation code...).
    public init(consumed: Int = 0) { self.consumed = consumed }

    public var isComplete: Bool { remaining == 0 }

    /// Reads as much of the list as has arrived. True once it is complete.
    public mutating func read(from r: inout WireReader, _ what: @autoclosure () -> String,
                              item: (inout WireReader) throws(WireError) -> Item) throws(WireError) -> Bool {
        let label = what()
        if remaining == nil {
            let before = r.unreadCount
            guard let n = try r.attempt(reading: label, already: consumed, { (r: inout WireReader) throws(WireError) in
                try r.readCount(label)
            }) else { return false }
            consumed += before - r.unreadCount
            remaining = n
            // No more than the bytes present could hold: a lying count cannot allocate.
            items.reserveCapacity(Swift.min(n, r.unreadCount / 8))
        }
        while let left = remaining, left > 0 {
            let before = r.unreadCount
            guard let next = try r.attempt(reading: label, already: consumed, item) else { return false }
            consumed += before - r.unreadCount
            items.append(next)
            remaining = left - 1
        }
        return true
    }

    /// Reads the rest of the message after the list (its last fields), counted as part of it.
    public mutating func readRest<T>(from r: inout WireReader, _ what: @autoclosure () -> String,
                                     _ body: (inout WireReader) throws(WireError) -> T) throws(WireError) -> T? {
        let before = r.unreadCount
        guard let value = try r.attempt(reading: what(), already: consumed, body) else { return nil }
        consumed += before - r.unreadCount
        return value
    }
}
