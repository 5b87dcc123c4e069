import NixCore

/// Reads worker-protocol values from a growable input buffer. Callers `feed` chunks as they
/// arrive and parse with `attempt`, which rewinds and returns nil when the input stops short,
/// so nothing is consumed until a whole value is there. Every length read is bounded by `limits`.
public struct WireReader: Sendable {
    private var buffer: [UInt8] = []
    /// Index of the next unread byte in `buffer`.
    private var position = 0
    public var limits: WireLimits

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
    /// Other errors propagate (and also leave the position where it began).
    public mutating func attempt<T>(_ body: (inout WireReader) throws(WireError) -> T) throws(WireError) -> T? {
        let start = position
        do {
            return try body(&self)
        } catch .truncated {
            position = start
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
