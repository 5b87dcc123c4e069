import Foundation
import NixCore
import NixStore
import Testing
import TestSupport

/// File names that are not UTF-8, and file types a NAR cannot hold.
@Suite(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct LocalNAREdgeTests {
    /// Linux names are bytes: "\xff" and "\xc3\xa9" (é) must sort and round-trip as bytes.
    @Test func nonUTF8NamesRoundTrip() throws {
        let dir = try TestSupport.temporaryDirectory("nar-bytes")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tree = dir.appendingPathComponent("tree").path
        try TestSupport.run(["sh", "-c", "mkdir \"$1\" && cd \"$1\" && touch \"$(printf '\\377')\" \"$(printf '\\303\\251')\" z A && ln -s \"$(printf '\\376')\" link", "sh", tree])
        var ours: [UInt8] = []
        try NARDumper().dump(path: tree) { ours.append(contentsOf: $0) }
        let nix = Array(try TestSupport.run(["nix-store", "--dump", tree]).stdout)
        #expect(ours == nix)
        let parse = try ChunkedParse(ours, chunk: 5)
        #expect(parse.events.filter { $0.hasPrefix("entry") }.count == 5)
        let out = dir.appendingPathComponent("restored").path
        try NARRestorer.restore(nar: ours, to: out)
        #expect(Array(try TestSupport.run(["nix-store", "--dump", out]).stdout) == nix)
    }

    @Test func refusesFifos() throws {
        let dir = try TestSupport.temporaryDirectory("nar-fifo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("fifo").path
        try TestSupport.run(["mkfifo", fifo])
        let error = try #require(throws: LocalFileError.self) { try NARDumper().narHash(path: dir.path) }
        #expect(error.description == "dumping '\(fifo)': file has an unsupported type")
        #expect(try TestSupport.run(["nix-store", "--dump", dir.path], check: false).status != 0)
    }

    @Test func missingPathIsASystemError() throws {
        let error = try #require(throws: LocalFileError.self) { try NARDumper().narHash(path: "/nonexistent/nix-bridge") }
        #expect(error.description == "getting status of '/nonexistent/nix-bridge': No such file or directory")
    }
}
