import Foundation
import NixCore
import NixStore
import Testing
import TestSupport

/// NARDumper and NARRestorer against the real `nix-store`.
@Suite(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct LocalNARTests {
    /// A tree with every node kind and the names whose order needs care.
    static func makeTree(in dir: URL, name: String = "tree") throws -> URL {
        let fm = FileManager.default
        let root = dir.appendingPathComponent(name)
        func file(_ path: String, _ contents: Data, executable: Bool = false) throws {
            let url = root.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try contents.write(to: url)
            try fm.setAttributes([.posixPermissions: executable ? 0o755 : 0o644], ofItemAtPath: url.path)
        }
        for n in ["B", "a", "a-b", "a.b", "Z", "_", "é"] { try file(n, Data("\(n)\n".utf8)) }
        try file("empty", Data())
        try file("bin/run", Data("#!/bin/sh\necho hi\n".utf8), executable: true)
        try file("bin/run-empty", Data(), executable: true)
        try file("nested/one/two/three/leaf", Data(UInt64.random(in: 0 ... .max).description.utf8))
        var big = Data(count: (1 << 20) + 12_345)
        big.withUnsafeMutableBytes { b in for i in 0..<b.count { b[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) } }
        try file("nested/big.bin", big)
        try fm.createDirectory(at: root.appendingPathComponent("emptydir"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("rel-link").path, withDestinationPath: "nested/one")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("abs-link").path, withDestinationPath: "/etc/hostname")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("dangling").path, withDestinationPath: "does/not/exist")
        return root
    }

    static func dump(_ path: String) throws -> [UInt8] {
        var out: [UInt8] = []
        try NARDumper().dump(path: path) { out.append(contentsOf: $0) }
        return out
    }

    static func nixDump(_ path: String) throws -> [UInt8] {
        Array(try TestSupport.run(["nix-store", "--dump", path]).stdout)
    }

    @Test func dumpEqualsNixStoreDump() throws {
        let dir = try TestSupport.temporaryDirectory("nar-dump")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tree = try Self.makeTree(in: dir)
        for path in [tree.path, tree.path + "/nested/big.bin", tree.path + "/bin/run", tree.path + "/rel-link", tree.path + "/emptydir"] {
            let ours = try Self.dump(path)
            #expect(ours == (try Self.nixDump(path)), "\(path)")
        }
    }

    @Test func narHashAndPathEqualNixStoreAdd() throws {
        let dir = try TestSupport.temporaryDirectory("nar-add")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tree = try Self.makeTree(in: dir, name: "nb-tree-\(UInt32.random(in: 0 ... .max))")
        let (narHash, narSize) = try NARDumper().narHash(path: tree.path)
        let added = try TestSupport.run(["nix-store", "--add", tree.path]).trimmed
        #expect(try TestSupport.run(["nix-store", "-q", "--hash", added]).trimmed == narHash.string(.nix32))
        #expect(try TestSupport.run(["nix-store", "-q", "--size", added]).trimmed == String(narSize))
        let path = try StoreDirectory.default.makeFixedOutputPath(name: tree.lastPathComponent, recursive: true, hash: narHash)
        #expect(StoreDirectory.default.print(path) == added)
    }

    @Test func readerParsesAndReserialisesNixDump() throws {
        let dir = try TestSupport.temporaryDirectory("nar-read")
        defer { try? FileManager.default.removeItem(at: dir) }
        let nar = try Self.nixDump(try Self.makeTree(in: dir).path)
        var events: [String]?
        for chunk in [1, 7, 4096, nar.count] {
            var copy: [UInt8] = []
            let writer = NARWriter { copy.append(contentsOf: $0) }
            let parse = try ChunkedParse(nar, chunk: chunk) { try writer.write($0) }
            try writer.finish()
            #expect(parse.consumed == UInt64(nar.count))
            #expect(copy == nar, "chunk \(chunk)")
            if let events { #expect(parse.events == events) } else { events = parse.events }
        }
        #expect(events?.contains("symlink does/not/exist") == true)
        #expect(events?.contains("regular executable=true size=0") == true)
    }

    @Test func restoreThenDumpRoundTrips() throws {
        let dir = try TestSupport.temporaryDirectory("nar-restore")
        defer { try? FileManager.default.removeItem(at: dir) }
        let nar = try Self.nixDump(try Self.makeTree(in: dir).path)
        let out = dir.appendingPathComponent("restored").path
        // Streamed in 64 KiB pieces, as from a socket.
        let restorer = try NARRestorer(destination: out)
        var reader = NARReader()
        var i = 0
        while i < nar.count {
            let end = min(i + 65_536, nar.count)
            try reader.feed(nar[i..<end]) { try restorer.handle($0) }
            i = end
        }
        try reader.finish()
        try restorer.finish()
        #expect(try Self.dump(out) == nar)
        #expect(try Self.nixDump(out) == nar)
        #expect(FileManager.default.isExecutableFile(atPath: out + "/bin/run"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out + "/dangling") == "does/not/exist")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["restored", "tree"])
        // Single-node NARs restore too.
        let file = dir.appendingPathComponent("file").path
        try NARRestorer.restore(nar: try Self.nixDump(out + "/nested/big.bin"), to: file)
        #expect(try Self.nixDump(file) == (try Self.nixDump(out + "/nested/big.bin")))
        let link = dir.appendingPathComponent("link").path
        try NARRestorer.restore(nar: try Self.nixDump(out + "/abs-link"), to: link)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "/etc/hostname")
    }

    @Test func interruptedRestoreLeavesNoTrace() throws {
        let dir = try TestSupport.temporaryDirectory("nar-abort")
        defer { try? FileManager.default.removeItem(at: dir) }
        let nar = try Self.nixDump(try Self.makeTree(in: dir).path)
        let out = dir.appendingPathComponent("restored").path
        let error = try #require(throws: NARError.self) { try NARRestorer.restore(nar: nar[..<(nar.count - 100)], to: out) }
        guard case .truncated = error.kind else { Issue.record("got \(error)"); return }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["tree"])
        // A restorer dropped half-way cleans up too.
        do {
            let restorer = try NARRestorer(destination: out)
            var reader = NARReader()
            try reader.feed(nar[..<(nar.count / 2)]) { try restorer.handle($0) }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["tree"])
    }

    @Test func restoreRefusesUnsafeNamesAndExistingDestinations() throws {
        let dir = try TestSupport.temporaryDirectory("nar-unsafe")
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["..", ".", "", "a/b", "a\0b"] {
            let restorer = try NARRestorer(destination: dir.appendingPathComponent("out").path)
            try restorer.handle(.directory)
            #expect(throws: LocalFileError.self) { try restorer.handle(.entry(name: Array(name.utf8))) }
            restorer.abort()
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        let error = try #require(throws: LocalFileError.self) { try NARRestorer(destination: dir.path) }
        #expect(error.description == "restoring to '\(dir.path)': path already exists")
    }
}
