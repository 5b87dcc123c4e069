import NixCore

/// The bytes of a fixture item, as NAR events. Small contents spell out each reference's full
/// path, as real outputs do (so a reference scanner would find them); large contents are
/// pseudo-random, 1 MiB at a time.
enum FixtureContent {
    static let chunkSize = 1 << 20

    static func write(_ item: StoreFixture.Item, storeDirectory: StoreDirectory, to nar: NARWriter) throws {
        var rng = SplitMix64(seed: item.contentSeed)
        let refText = item.references.map { storeDirectory.print($0) + "\n" }.joined()
        switch item.content {
        case let .file(size):
            try nar.file(executable: false, contents: text(header: item.path.name, refs: refText, size: size, rng: &rng))
        case let .directory(files):
            try nar.directory()
            for i in 0..<min(max(files, 1), 9) {
                try nar.entry(name: "data-\(i)")
                try nar.file(executable: i == 0, contents: text(header: "data \(i)", refs: "", size: 16 + Int(rng.next() % 512), rng: &rng))
            }
            if let first = item.references.first {
                try nar.entry(name: "link")
                try nar.symlink(target: storeDirectory.print(first))
            }
            try nar.entry(name: "refs")
            try nar.file(executable: false, contents: Array(refText.utf8))
            try nar.endDirectory()
        case let .large(bytes):
            try writeLarge(bytes: bytes, rng: &rng, to: nar)
        }
    }

    /// `header`, the references, then printable filler up to `size` bytes (at least the text).
    static func text(header: String, refs: String, size: Int, rng: inout SplitMix64) -> [UInt8] {
        var out = Array("\(header)\n\(refs)".utf8)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789 \n".utf8)
        out.reserveCapacity(max(size, out.count))
        while out.count < size {
            var r = rng.next()
            for _ in 0..<8 where out.count < size {
                out.append(alphabet[Int(r % UInt64(alphabet.count))])
                r >>= 8
            }
        }
        return out
    }

    /// One 1 MiB random block, reused for every chunk with the chunk's number stamped on its
    /// first 8 bytes, so no two chunks are alike and memory stays at one block.
    static func writeLarge(bytes: UInt64, rng: inout SplitMix64, to nar: NARWriter) throws {
        var block = [UInt8](repeating: 0, count: chunkSize)
        block.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in words.indices { words[i] = rng.next() }
        }
        try nar.regularFile(executable: false, size: bytes)
        var left = bytes
        var index: UInt64 = 0
        while left > 0 {
            let n = Int(min(UInt64(chunkSize), left))
            try block.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: index.littleEndian, toByteOffset: 0, as: UInt64.self)
                try nar.contents(UnsafeRawBufferPointer(rebasing: raw.prefix(n)))
            }
            left -= UInt64(n)
            index += 1
        }
        try nar.endFile()
    }
}
