import NixCore

/// Hand-built NARs (bypassing `NARWriter`'s checks) and chunked parsing, for the NAR tests.
public enum RawNAR {
    /// One NAR string: 8-byte little-endian length, bytes, zero padding.
    public static func string(_ s: [UInt8]) -> [UInt8] {
        var out = withUnsafeBytes(of: UInt64(s.count).littleEndian) { Array($0) }
        out += s
        out += [UInt8](repeating: 0, count: (8 - s.count % 8) % 8)
        return out
    }

    public static func string(_ s: String) -> [UInt8] { string(Array(s.utf8)) }

    /// A node: its strings after the magic.
    public static func file(_ contents: [UInt8], executable: Bool = false) -> [[UInt8]] {
        var t = tags("(", "type", "regular")
        if executable { t += tags("executable", "") }
        return t + tags("contents") + [contents] + tags(")")
    }

    public static func symlink(_ target: [UInt8]) -> [[UInt8]] {
        tags("(", "type", "symlink", "target") + [target] + tags(")")
    }

    /// A directory with entries in the order given (sorted or not).
    public static func directory(_ entries: [(name: [UInt8], node: [[UInt8]])]) -> [[UInt8]] {
        var t = tags("(", "type", "directory")
        for e in entries { t += tags("entry", "(", "name") + [e.name] + tags("node") + e.node + tags(")") }
        return t + tags(")")
    }

    /// `depth` directories nested in one another, the innermost holding one file.
    public static func nested(depth: Int) -> [[UInt8]] {
        var node = file(Array("x".utf8))
        for _ in 0..<depth { node = directory([(Array("d".utf8), node)]) }
        return node
    }

    public static func tags(_ t: String...) -> [[UInt8]] { t.map { Array($0.utf8) } }

    /// The NAR of `node`: the magic and every string encoded.
    public static func nar(_ node: [[UInt8]]) -> [UInt8] {
        ([Array(NARFormat.magic.utf8)] + node).flatMap { string($0) }
    }
}

/// A parse of a NAR fed to `NARReader` in fixed-size chunks.
public struct ChunkedParse {
    /// Events rendered as text; file contents as their size and SHA-256.
    public var events: [String] = []
    public var consumed: UInt64 = 0
    /// Bytes after the NAR's end.
    public var trailing: [UInt8] = []

    /// Feeds `bytes` in `chunk`-byte pieces, also handing every event to `also`, then calls
    /// `finish()` (which throws for a truncated NAR).
    public init(_ bytes: [UInt8], chunk: Int, also: (NAREvent) throws -> Void = { _ in }) throws {
        var reader = NARReader()
        var events: [String] = []
        var contents = HashSink(.sha256)
        var size = 0
        let handler: (NAREvent) throws -> Void = { event in
            switch event {
            case let .regularFile(executable, s): events.append("regular executable=\(executable) size=\(s)")
            case let .contents(buf):
                contents.update(buf)
                size += buf.count
            case .endFile:
                events.append("contents \(size) \(contents.finalize().string(.base16, withAlgorithm: false))")
                contents = HashSink(.sha256)
                size = 0
            case let .symlink(target): events.append("symlink \(String(decoding: target, as: UTF8.self))")
            case .directory: events.append("directory")
            case let .entry(name): events.append("entry \(String(decoding: name, as: UTF8.self))")
            case .endDirectory: events.append("end directory")
            }
            try also(event)
        }
        var i = 0
        while i < bytes.count {
            let end = min(i + chunk, bytes.count)
            if reader.isComplete {
                trailing += bytes[i..<end]
            } else {
                let used = try reader.feed(bytes[i..<end], handler)
                trailing += bytes[(i + used)..<end]
            }
            i = end
        }
        try reader.finish()
        self.events = events
        self.consumed = reader.bytesConsumed
    }
}
