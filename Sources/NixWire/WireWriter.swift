import NixCore

/// Appends worker-protocol values to a byte buffer: u64 little endian, strings as length +
/// bytes + zero padding to 8, lists as count + items.
public struct WireWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func writeU64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func writeInt(_ value: Int) { writeU64(UInt64(truncatingIfNeeded: value)) }

    public mutating func writeInt64(_ value: Int64) { writeU64(UInt64(bitPattern: value)) }

    public mutating func writeBool(_ value: Bool) { writeU64(value ? 1 : 0) }

    public mutating func writeBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        writeU64(UInt64(data.count))
        bytes.append(contentsOf: data)
        let pad = (8 - data.count % 8) % 8
        if pad > 0 { bytes.append(contentsOf: repeatElement(0, count: pad)) }
    }

    public mutating func writeString(_ s: String) { writeBytes(Array(s.utf8)) }

    /// A list of strings in the given order.
    public mutating func writeStrings(_ list: [String]) {
        writeU64(UInt64(list.count))
        for s in list { writeString(s) }
    }

    /// A set of strings: written sorted by bytes, as C++'s std::set<std::string> orders them.
    public mutating func writeStringSet(_ set: some Collection<String>) {
        writeStrings(WireWriter.sortedByBytes(set))
    }

    /// A map of strings: written sorted by key bytes.
    public mutating func writeStringMap(_ map: [String: String]) {
        writeU64(UInt64(map.count))
        for k in WireWriter.sortedByBytes(map.keys) {
            writeString(k)
            writeString(map[k]!)
        }
    }

    public mutating func writeStorePath(_ path: StorePath, _ ctx: WireContext) {
        writeString(ctx.storeDir.print(path))
    }

    /// An optional store path: empty string for none.
    public mutating func writeOptionalStorePath(_ path: StorePath?, _ ctx: WireContext) {
        writeString(path.map(ctx.storeDir.print) ?? "")
    }

    /// A set of store paths, sorted as full paths.
    public mutating func writeStorePathSet(_ paths: some Collection<StorePath>, _ ctx: WireContext) {
        writeStringSet(paths.map(ctx.storeDir.print))
    }

    /// Appends raw bytes with no length or padding (NAR data, pre-encoded values).
    public mutating func writeRaw<C: Collection>(_ data: C) where C.Element == UInt8 {
        bytes.append(contentsOf: data)
    }

    static func sortedByBytes(_ strings: some Collection<String>) -> [String] {
        strings.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}
