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
    /// parser, which reads the whole text when it is used. One pass, no allocation but the
    /// three values (this runs for every insert).
    init(scanning text: String) {
        self.init()
        var text = text
        text.withUTF8 { bytes in
            var lineStart = 0
            while lineStart < bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                var valueEnd = lineEnd
                // Tolerate CRLF line ends.
                if valueEnd > lineStart && bytes[valueEnd - 1] == UInt8(ascii: "\r") { valueEnd -= 1 }
                let line = UnsafeBufferPointer(rebasing: bytes[lineStart..<valueEnd])
                if let value = Self.value(of: "StorePath: ", in: line) {
                    // The base name follows the last '/', and the name follows the hash's '-'.
                    let slash = value.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? value.startIndex
                    if let dash = value[slash...].firstIndex(of: UInt8(ascii: "-")) {
                        namePart = String(decoding: value[(dash + 1)...], as: UTF8.self)
                    }
                } else if let value = Self.value(of: "NarHash: ", in: line) {
                    narHash = String(decoding: value, as: UTF8.self)
                } else if let value = Self.value(of: "NarSize: ", in: line) {
                    narSize = Int64(String(decoding: value, as: UTF8.self))
                }
                lineStart = lineEnd + 1
            }
        }
    }

    private static func value(of key: StaticString, in line: UnsafeBufferPointer<UInt8>) -> Slice<UnsafeBufferPointer<UInt8>>? {
        let keyBytes = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        guard line.count >= keyBytes.count, line.starts(with: keyBytes) else { return nil }
        return line[keyBytes.count...]
    }
}
