import NixWire

/// A small, complete NAR parser used as the NarFromPath boundary detector in tests (the
/// project's streaming NARReader plugs in the same way). It buffers and re-parses, which is
/// fine for test-sized NARs.
struct TestNARDetector: NARBoundaryDetector {
    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    private var buffer = WireReader(limits: WireLimits(maxStringLength: 1 << 30))
    private var seen = 0

    mutating func consume(_ bytes: ArraySlice<UInt8>) throws -> NARBoundaryProgress {
        let before = seen
        buffer.feed(bytes)
        seen += bytes.count
        var r = buffer
        if let end = try TestNARDetector.parseNAR(&r) {
            return NARBoundaryProgress(consumed: end - before, finished: true)
        }
        return NARBoundaryProgress(consumed: bytes.count, finished: false)
    }

    /// Parses a whole NAR from the start of `r`; its length, or nil if `r` stops inside it.
    static func parseNAR(_ r: inout WireReader) throws -> Int? {
        let start = r.unreadCount
        let parsed = try r.attempt { (r: inout WireReader) throws(WireError) -> Bool in
            guard try r.readString("NAR magic") == "nix-archive-1" else { return false }
            return try node(&r, depth: 0)
        }
        guard let parsed else { return nil }
        guard parsed else { throw Invalid(description: "not a valid NAR") }
        return start - r.unreadCount
    }

    private static func expect(_ r: inout WireReader, _ s: String) throws(WireError) -> Bool {
        try r.readString("NAR token") == s
    }

    private static func node(_ r: inout WireReader, depth: Int) throws(WireError) -> Bool {
        guard depth < 256, try expect(&r, "("), try expect(&r, "type") else { return false }
        switch try r.readString("NAR node type") {
        case "regular":
            var tag = try r.readString("NAR token")
            if tag == "executable" {
                guard try expect(&r, "") else { return false }
                tag = try r.readString("NAR token")
            }
            guard tag == "contents" else { return false }
            _ = try r.readBytes("NAR contents")
            return try expect(&r, ")")
        case "symlink":
            guard try expect(&r, "target") else { return false }
            _ = try r.readString("symlink target")
            return try expect(&r, ")")
        case "directory":
            while true {
                let tag = try r.readString("NAR token")
                if tag == ")" { return true }
                guard tag == "entry", try expect(&r, "("), try expect(&r, "name") else { return false }
                _ = try r.readString("entry name")
                guard try expect(&r, "node"), try node(&r, depth: depth + 1), try expect(&r, ")") else { return false }
            }
        default:
            return false
        }
    }
}
