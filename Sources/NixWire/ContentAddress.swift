import NixCore

/// NixCore's `ContentAddress` on the wire: its rendered form (`text:sha256:…`,
/// `fixed:r:sha256:…`), an empty string for "none" where optional.
extension ContentAddress {
    /// Parses the wire form, turning a bad address into a wire error.
    init(wire s: String) throws(WireError) {
        do {
            try self.init(parsing: s)
        } catch {
            throw .badValue(reading: "content address", detail: error.description)
        }
    }

    /// Reads an optional content address (empty string = none).
    static func readOptional(from r: inout WireReader) throws(WireError) -> ContentAddress? {
        let s = try r.readString("content address")
        return s.isEmpty ? nil : try ContentAddress(wire: s)
    }

    static func read(from r: inout WireReader) throws(WireError) -> ContentAddress {
        try ContentAddress(wire: try r.readString("content address"))
    }
}
