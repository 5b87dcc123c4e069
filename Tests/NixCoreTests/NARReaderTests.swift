import NixCore
import Testing
import TestSupport

/// `NARReader` on hand-built NARs: chunking, re-serialisation, and every refusal.
struct NARReaderTests {
    static let chunkSizes = [1, 7, 4096, Int.max]

    static func rejection(_ nar: [UInt8]) throws -> NARError {
        var first: NARError?
        for chunk in chunkSizes {
            let e = try #require(throws: NARError.self) { try ChunkedParse(nar, chunk: chunk) }
            if let first { #expect(e == first, "chunk \(chunk) disagrees") } else { first = e }
        }
        return try #require(first)
    }

    @Test func parsesAndReserialisesInAnyChunkSize() throws {
        let nar = try NARWriter.collect(NARWriterTests.sampleTree)
        var expected: [String]?
        for chunk in Self.chunkSizes {
            var copy: [UInt8] = []
            let writer = NARWriter { copy.append(contentsOf: $0) }
            let parse = try ChunkedParse(nar, chunk: chunk) { try writer.write($0) }
            try writer.finish()
            #expect(copy == nar, "chunk \(chunk)")
            #expect(parse.consumed == UInt64(nar.count))
            if let expected { #expect(parse.events == expected) } else { expected = parse.events }
        }
        #expect(expected?.first == "directory")
        #expect(expected?.contains("symlink ../somewhere") == true)
        #expect(expected?.contains("regular executable=true size=4") == true)
    }

    @Test func findsTheEndBeforeTrailingBytes() throws {
        let nar = try NARWriter.collect(NARWriterTests.sampleTree)
        let tail = Array("next message on the wire".utf8)
        for chunk in Self.chunkSizes {
            let parse = try ChunkedParse(nar + tail, chunk: chunk)
            #expect(parse.consumed == UInt64(nar.count))
            #expect(parse.trailing == tail)
        }
    }

    @Test func refusesNonNARs() throws {
        #expect(try Self.rejection(RawNAR.string("nix-archive-2") + RawNAR.string("(")).kind == .notANAR)
        #expect(try Self.rejection(Array(repeating: 0xff, count: 16)).kind == .notANAR)
        #expect(try Self.rejection(RawNAR.string("hello")).description == "NAR: at offset 0: input doesn't look like a Nix archive")
    }

    @Test func refusesUnsortedAndDuplicateEntries() throws {
        let file = RawNAR.file([])
        let unsorted = RawNAR.nar(RawNAR.directory([(Array("c".utf8), file), (Array("b".utf8), file)]))
        let e = try Self.rejection(unsorted)
        #expect(e.kind == .notSorted(name: Array("b".utf8), previous: Array("c".utf8)))
        #expect(e.message == "NAR directory is not sorted: entry 'b' is not sorted after 'c'")
        let duplicate = RawNAR.nar(RawNAR.directory([(Array("a".utf8), file), (Array("a".utf8), file)]))
        #expect(try Self.rejection(duplicate).kind == .notSorted(name: Array("a".utf8), previous: Array("a".utf8)))
        // Byte order, not Unicode order: "Z" (0x5a) sorts before "a" (0x61), "é" after "z".
        let bytewise = RawNAR.nar(RawNAR.directory([
            (Array("Z".utf8), file), (Array("a".utf8), file), (Array("z".utf8), file), (Array("é".utf8), file),
        ]))
        #expect(try NARReader.validate(bytewise) == UInt64(bytewise.count))
    }

    @Test func enforcesNixDepthLimit() throws {
        let deepest = RawNAR.nar(RawNAR.nested(depth: NARFormat.maxDepth - 1))
        #expect(try NARReader.validate(deepest) == UInt64(deepest.count))
        let tooDeep = try Self.rejection(RawNAR.nar(RawNAR.nested(depth: NARFormat.maxDepth)))
        #expect(tooDeep.kind == .tooDeep(max: 64))
        #expect(tooDeep.message == "NAR directory nesting exceeds maximum depth of 64")
    }

    @Test func boundsLengthsBeforeReadingThem() throws {
        // A tag claiming 2^62 bytes is refused from its length prefix alone.
        var huge = RawNAR.string(NARFormat.magic)
        huge += withUnsafeBytes(of: (UInt64(1) << 62).littleEndian) { Array($0) }
        let e = try Self.rejection(huge)
        #expect(e.offset == 24)
        guard case .stringTooLong = e.kind else { Issue.record("got \(e)"); return }
        let longName = RawNAR.nar(RawNAR.directory([(Array(repeating: 0x6e, count: 256), RawNAR.file([]))]))
        #expect(try Self.rejection(longName).kind == .stringTooLong(what: "file name", length: 256, max: 255))
        let longTarget = RawNAR.nar(RawNAR.symlink(Array(repeating: 0x74, count: 4096)))
        #expect(try Self.rejection(longTarget).kind == .stringTooLong(what: "symlink target", length: 4096, max: 4095))
        let emptyTarget = RawNAR.nar(RawNAR.symlink([]))
        #expect(try Self.rejection(emptyTarget).kind == .invalidSymlinkTarget([]))
    }

    @Test func refusesGrammarErrors() throws {
        let badType = RawNAR.nar(RawNAR.tags("(", "type", "fifo", ")"))
        #expect(try Self.rejection(badType).message == "unknown file type 'fifo'")
        let badMarker = RawNAR.nar(RawNAR.tags("(", "type", "regular", "executable", "yes", "contents", "", ")"))
        #expect(try Self.rejection(badMarker).kind == .executableMarkerNotEmpty)
        let badEntry = RawNAR.nar(RawNAR.tags("(", "type", "directory", "item", ")"))
        #expect(try Self.rejection(badEntry).message == "expected tag 'entry' or ')', got 'item'")
        var badPadding = RawNAR.nar(RawNAR.file(Array("abc".utf8)))
        badPadding[badPadding.count - 17] = 1  // a padding byte after "abc"
        #expect(try Self.rejection(badPadding).kind == .nonZeroPadding)
    }

    /// Contents are streamed: a file declaring 1 TiB is accepted as far as the bytes go, and
    /// only the end of input reports the truncation.
    @Test func streamsHugeFilesWithoutBuffering() throws {
        var nar = RawNAR.string(NARFormat.magic)
        for tag in RawNAR.tags("(", "type", "regular", "contents") { nar += RawNAR.string(tag) }
        let size: UInt64 = 1 << 40
        nar += withUnsafeBytes(of: size.littleEndian) { Array($0) }
        var reader = NARReader()
        var declared: UInt64 = 0
        var seen = 0
        try reader.feed(nar) { if case let .regularFile(_, s) = $0 { declared = s } }
        let chunk = [UInt8](repeating: 7, count: 1 << 20)
        for _ in 0..<8 {
            let used = try reader.feed(chunk) { if case let .contents(b) = $0 { seen += b.count } }
            #expect(used == chunk.count)
        }
        #expect(declared == size)
        #expect(seen == 8 << 20)
        #expect(!reader.isComplete)
        let e = try #require(throws: NARError.self) { try reader.finish() }
        #expect(e.message == "unexpected end of NAR, expected \(size - (8 << 20)) more bytes of file contents")
    }

    @Test func staysFailedAfterAnError() throws {
        var reader = NARReader()
        let bad = RawNAR.string("hello")
        #expect(throws: NARError.self) { try reader.feed(bad) { _ in } }
        #expect(throws: NARError.self) { try reader.feed(RawNAR.string(NARFormat.magic)) { _ in } }

        struct Stop: Error {}
        var stopped = NARReader()
        let nar = RawNAR.nar(RawNAR.directory([]))
        #expect(throws: Stop.self) { try stopped.feed(nar) { _ in throw Stop() } }
        let e = try #require(throws: NARError.self) { try stopped.feed(nar) { _ in } }
        #expect(e.message.hasPrefix("NAR reader: stopped by its handler"))
    }
}
