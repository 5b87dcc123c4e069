/// The few narinfo fields the cache keeps in their own columns (for queries and statistics),
/// picked out of the narinfo text without parsing all of it. The text itself is stored whole.
struct NarInfoFields: Equatable {
    /// The store path's name part (after `<hash>-`), as Nix's NARs.namePart.
    var namePart: String?
    /// The `NarHash:` value as written (e.g. `sha256:<nix32>`).
    var narHash: String?
    /// The `NarSize:` value.
    var narSize: Int64?

    init(namePart: String? = nil, narHash: String? = nil, narSize: Int64? = nil) {
        self.namePart = namePart
        self.narHash = narHash
        self.narSize = narSize
    }

    /// Scans `Key: value` lines; unknown keys and malformed values are left to the narinfo
    /// parser, which reads the whole text when it is used.
    init(scanning text: String) {
        self.init()
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            if let value = Self.value(of: "StorePath: ", in: line) {
                // The base name follows the last '/', and the name follows the hash's '-'.
                let baseName = value.split(separator: UInt8(ascii: "/")).last ?? value
                if let dash = baseName.firstIndex(of: UInt8(ascii: "-")) {
                    namePart = String(Substring(baseName[baseName.index(after: dash)...]))
                }
            } else if let value = Self.value(of: "NarHash: ", in: line) {
                narHash = String(Substring(value))
            } else if let value = Self.value(of: "NarSize: ", in: line) {
                narSize = Int64(String(Substring(value)))
            }
        }
    }

    private static func value(of key: StaticString, in line: Substring.UTF8View) -> Substring.UTF8View? {
        let keyBytes = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        guard line.starts(with: keyBytes) else { return nil }
        var value = line.dropFirst(keyBytes.count)
        // Tolerate CRLF line ends.
        if value.last == UInt8(ascii: "\r") { value = value.dropLast() }
        return value
    }
}
