import Foundation
import NixCore
import Testing
import TestSupport

/// `NARWriter` output against hand-encoded NARs and against the real `nix-store`.
struct NARWriterTests {
    /// A small tree covering every node kind, written through the writer.
    static func sampleTree(_ w: NARWriter) throws {
        try w.directory()
        for name in ["B", "a", "a-b", "a.b"] {
            try w.entry(name: name)
            try w.file(executable: name == "a-b", contents: Array("\(name)\n".utf8))
        }
        try w.entry(name: "empty")
        try w.file(executable: false, contents: [UInt8]())
        try w.entry(name: "link")
        try w.symlink(target: "../somewhere")
        try w.entry(name: "sub")
        try w.directory()
        try w.entry(name: "deeper")
        try w.directory()
        try w.endDirectory()
        try w.endDirectory()
        try w.endDirectory()
    }

    static func sampleTreeRaw() -> [UInt8] {
        var entries: [(name: [UInt8], node: [[UInt8]])] = ["B", "a", "a-b", "a.b"].map {
            (Array($0.utf8), RawNAR.file(Array("\($0)\n".utf8), executable: $0 == "a-b"))
        }
        entries.append((Array("empty".utf8), RawNAR.file([])))
        entries.append((Array("link".utf8), RawNAR.symlink(Array("../somewhere".utf8))))
        entries.append((Array("sub".utf8), RawNAR.directory([(Array("deeper".utf8), RawNAR.directory([]))])))
        return RawNAR.nar(RawNAR.directory(entries))
    }

    @Test func writesTheNARFormat() throws {
        let nar = try NARWriter.collect(Self.sampleTree)
        #expect(nar == Self.sampleTreeRaw())
        #expect(nar.count % 8 == 0)
        #expect(try NARReader.validate(nar) == UInt64(nar.count))
    }

    @Test func singleNodes() throws {
        let file = try NARWriter.collect { try $0.file(executable: true, contents: Array("hello".utf8)) }
        #expect(file == RawNAR.nar(RawNAR.file(Array("hello".utf8), executable: true)))
        let link = try NARWriter.collect { try $0.symlink(target: "/nix/store") }
        #expect(link == RawNAR.nar(RawNAR.symlink(Array("/nix/store".utf8))))
    }

    @Test func contentsInManyChunksEqualOneChunk() throws {
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = try NARWriter.collect { try $0.file(executable: false, contents: data) }
        let pieces = try NARWriter.collect { w in
            try w.regularFile(executable: false, size: UInt64(data.count))
            var i = 0
            for size in [1, 7, 20_000, 3, 50_000] {
                try w.contents(data[i..<(i + size)])
                i += size
            }
            try w.contents(data[i...])
            try w.endFile()
        }
        #expect(whole == pieces)
        let sink = NARHashSink()
        let w = NARWriter(sink: sink.sink)
        try w.file(executable: false, contents: data)
        try w.finish()
        let (hash, size) = sink.finalize()
        #expect(hash == HashSink.hash(.sha256, whole))
        #expect(size == UInt64(whole.count))
    }

    @Test(arguments: ["", ".", "..", "a/b", "a\0b", String(repeating: "n", count: 256)])
    func refusesInvalidNames(_ name: String) throws {
        let w = NARWriter { _ in }
        try w.directory()
        let error = try #require(throws: NARError.self) { try w.entry(name: name) }
        #expect(error.kind == .invalidName(Array(name.utf8)))
    }

    @Test func acceptsLongestName() throws {
        let name = String(repeating: "n", count: NARFormat.maxNameLength)
        let nar = try NARWriter.collect { w in
            try w.directory()
            try w.entry(name: name)
            try w.symlink(target: String(repeating: "t", count: NARFormat.maxTargetLength))
            try w.endDirectory()
        }
        #expect(try NARReader.validate(nar) == UInt64(nar.count))
    }

    @Test func refusesUnsortedAndDuplicateNames() throws {
        for (first, second) in [("b", "a"), ("a", "a"), ("a.b", "a-b"), ("a", "B")] {
            let w = NARWriter { _ in }
            try w.directory()
            try w.entry(name: first)
            try w.file(executable: false, contents: [UInt8]())
            let error = try #require(throws: NARError.self) { try w.entry(name: second) }
            #expect(error.kind == .notSorted(name: Array(second.utf8), previous: Array(first.utf8)))
            #expect(error.message.contains("entry '\(second)' is not sorted after '\(first)'"))
        }
    }

    @Test func refusesBadSymlinkTargets() throws {
        for target in ["", "a\0b", String(repeating: "t", count: NARFormat.maxTargetLength + 1)] {
            let w = NARWriter { _ in }
            #expect(throws: NARError(offset: 24, .invalidSymlinkTarget(Array(target.utf8)))) { try w.symlink(target: target) }
        }
    }

    @Test func refusesWrongContentSizes() throws {
        let tooMuch = NARWriter { _ in }
        try tooMuch.regularFile(executable: false, size: 2)
        #expect(throws: NARError.self) { try tooMuch.contents(Array("abc".utf8)) }
        let tooLittle = NARWriter { _ in }
        try tooLittle.regularFile(executable: false, size: 2)
        try tooLittle.contents(Array("a".utf8))
        let error = try #require(throws: NARError.self) { try tooLittle.endFile() }
        #expect(error.kind == .sizeMismatch(declared: 2, written: 1))
    }

    @Test func refusesOutOfOrderEvents() throws {
        let w = NARWriter { _ in }
        #expect(throws: NARError.self) { try w.entry(name: "a") }
        #expect(throws: NARError.self) { try w.contents(Array("a".utf8)) }
        #expect(throws: NARError.self) { try w.finish() }
        try w.directory()
        #expect(throws: NARError.self) { try w.symlink(target: "x") }
        try w.endDirectory()
        #expect(throws: NARError.self) { try w.directory() }
        try w.finish()
    }

    /// Nix's depth limit: the root is depth 0 and a node at depth 64 is refused.
    @Test func refusesNestingBeyondNixLimit() throws {
        func nest(_ w: NARWriter, _ levels: Int) throws {
            try w.directory()
            for _ in 1..<levels {
                try w.entry(name: "d")
                try w.directory()
            }
        }
        let ok = NARWriter { _ in }
        try nest(ok, NARFormat.maxDepth)  // directories at depths 0...63
        let tooDeep = NARWriter { _ in }
        try nest(tooDeep, NARFormat.maxDepth)
        let error = try #require(throws: NARError.self) { try tooDeep.entry(name: "d") }
        #expect(error.kind == .tooDeep(max: 64))
    }

    /// The real nix-store restores our NAR and dumps it back byte for byte.
    @Test(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
    func nixStoreRestoresAndDumpsOurNAR() throws {
        let nar = try NARWriter.collect(Self.sampleTree)
        let dir = try TestSupport.temporaryDirectory("nar-writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("restored").path
        try TestSupport.run(["nix-store", "--restore", out], input: Data(nar))
        let dumped = try TestSupport.run(["nix-store", "--dump", out]).stdout
        #expect(Array(dumped) == nar)
        #expect(FileManager.default.isExecutableFile(atPath: out + "/a-b"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/link") == "../somewhere")
    }
}
