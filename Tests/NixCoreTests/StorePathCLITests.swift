import Foundation
import NixCore
import Testing
import TestSupport

/// Store paths computed by `StoreDirectory` against the paths the real nix gives.
@Suite(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct StorePathCLITests {
    static let store = StoreDirectory.default

    static func randomText() -> String {
        "nix-bridge test \(UInt64.random(in: 0 ... .max))\n"
    }

    @Test func toFileIsATextPath() throws {
        for contents in ["hello", Self.randomText(), ""] {
            let expr = "builtins.toFile \"x\" \"\(contents.replacingOccurrences(of: "\n", with: "\\n"))\""
            let printed = try TestSupport.run(["nix-instantiate", "--eval", "-E", expr]).trimmed
            let path = try Self.store.makeTextPath(name: "x", contentHash: HashSink.hash(.sha256, string: contents), references: [])
            #expect("\"\(Self.store.print(path))\"" == printed)
        }
    }

    @Test func addFixedFlatIsAFixedOutputPath() throws {
        let dir = try TestSupport.temporaryDirectory("add-fixed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("flat.txt")
        let text = Self.randomText()
        try text.write(to: file, atomically: true, encoding: .utf8)
        for algorithm in [HashAlgorithm.sha256, .sha1] {
            let printed = try TestSupport.run(["nix-store", "--add-fixed", algorithm.rawValue, file.path]).trimmed
            let expected = try Self.store.makeFixedOutputPath(
                name: "flat.txt", recursive: false, hash: HashSink.hash(algorithm, string: text))
            #expect(Self.store.print(expected) == printed)
        }
    }

    /// `--recursive sha1`: the path is `fixed:out:r:sha1:...` over the NAR's SHA-1 (here the
    /// NAR comes from `nix-store --dump`; NixStoreTests checks our own dumper).
    @Test func addFixedRecursiveIsAFixedOutputPath() throws {
        let dir = try TestSupport.temporaryDirectory("add-fixed-r")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tree = dir.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Self.randomText().write(to: tree.appendingPathComponent("sub/file"), atomically: true, encoding: .utf8)
        let nar = try TestSupport.run(["nix-store", "--dump", tree.path]).stdout
        for (algorithm, recursive) in [(HashAlgorithm.sha1, true), (.sha512, true), (.sha256, true)] {
            let args = ["nix-store", "--add-fixed", "--recursive", algorithm.rawValue, tree.path]
            let printed = try TestSupport.run(args).trimmed
            let expected = try Self.store.makeFixedOutputPath(
                name: "tree", recursive: recursive, hash: HashSink.hash(algorithm, Array(nar)))
            #expect(Self.store.print(expected) == printed, "\(algorithm)")
        }
    }
}
