import NixCore
import Testing

/// Every narinfo the bridge can render parses back to itself, and nothing a peer sends can
/// add lines to one.
@Suite("NarInfo render and parse")
struct NarInfoRenderTests {
    /// A small deterministic generator (the same cases every run).
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func text(_ alphabet: String, _ range: ClosedRange<Int>) -> String {
            let a = Array(alphabet)
            return String((0..<(range.lowerBound + below(range.count))).map { _ in a[below(a.count)] })
        }
        mutating func storePath() -> StorePath {
            let hash = text("0123456789abcdfghijklmnpqrsvwxyz", 32...32)
            return try! StorePath(baseName: hash + "-" + text("abcxyz", 1...1) + text("abcxyz0123+-._?=", 0...20))
        }
        mutating func hash() -> Hash {
            HashSink.hash(.sha256, string: String(next()))
        }
        mutating func signature() -> String {
            text("abcdefghijklmnopqrstuvwxyzABC.-_0123456789", 1...20) + ":"
                + text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 86...86) + "=="
        }
    }

    static func random(_ g: inout Generator) -> NarInfo {
        let path = g.storePath()
        var refs = Set<StorePath>()
        for _ in 0..<g.below(5) { refs.insert(g.storePath()) }
        if g.below(3) == 0 { refs.insert(path) }
        var sigs = Set<String>()
        for _ in 0..<g.below(4) { sigs.insert(g.signature()) }
        let ca: ContentAddress? = [nil, .text(g.hash()), .fixed(.recursive, g.hash()),
                                   .fixed(.flat, HashSink.hash(.sha1, string: "x"))][g.below(4)]
        let info = PathInfo(path: path, deriver: g.below(2) == 0 ? nil : g.storePath(), narHash: g.hash(),
                            references: refs, narSize: UInt64(1 + g.below(1 << 30)), sigs: sigs, ca: ca)
        return NarInfo(pathInfo: info, url: "nar/" + g.text("0123456789abcdfghijklmnpqrsvwxyz", 1...52) + ".nar" + ["", ".xz"][g.below(2)],
                       compression: ["none", "xz", "bzip2", "zstd"][g.below(4)],
                       fileHash: g.below(2) == 0 ? nil : g.hash(), fileSize: UInt64(g.below(1 << 20)),
                       system: [nil, "x86_64-linux", "aarch64-darwin"][g.below(3)])
    }

    @Test func everyRenderableNarInfoParsesBackToItself() throws {
        var g = Generator(state: 13)
        for _ in 0..<2000 {
            let x = Self.random(&g)
            #expect(x.renderProblem == nil)
            let parsed = try NarInfo(parsing: x.render(), whence: "generated")
            #expect(parsed == x)
        }
    }

    @Test func aSignatureWithALineBreakCannotInjectLines() throws {
        var g = Generator(state: 7)
        var x = Self.random(&g)
        x.pathInfo.ca = nil
        let evil = "k:" + String(repeating: "A", count: 88) + "\nCA: fixed:r:sha256:" + HashSink.hash(.sha256, string: "e").string(.nix32, withAlgorithm: false)
        x.pathInfo.sigs.insert(evil)
        #expect(x.renderProblem != nil)
        let text = x.render()
        #expect(!text.contains("\nCA:"))
        #expect(try NarInfo(parsing: text, whence: "rendered").pathInfo.ca == nil)
        // Dropped where peers' infos enter, so it is never stored or forwarded either.
        #expect(!x.pathInfo.withWellFormedSignatures.sigs.contains(evil))
        #expect(x.pathInfo.withWellFormedSignatures.sigs.count == x.pathInfo.sigs.count - 1)
    }

    @Test func malformedSignaturesAndControlCharactersAreRefusedWithTheLine() throws {
        let base = "StorePath: /nix/store/0123456789abcdfghijklmnpqrsvwxyz-x\nURL: nar/a.nar\nNarHash: sha256:"
            + HashSink.hash(.sha256, string: "n").string(.nix32, withAlgorithm: false) + "\nNarSize: 8\n"
        #expect(throws: Never.self) { try NarInfo(parsing: base + "Sig: k:AAAA\n", whence: "f") }
        for (bad, reasonHas) in [("Sig: nocolon\n", "keyname:base64"), ("Sig: :AAAA\n", "key name"),
                                 ("Sig: k:not base64!\n", "base64"), ("Sig: k:\n", "base64"),
                                 ("Sig: k\u{1}x:AAAA\n", "control character"),
                                 ("URL: nar/a\rCA: x\n", "control character"), ("System: x\u{7f}\n", "control character")] {
            #expect {
                try NarInfo(parsing: base + bad, whence: "f")
            } throws: { error in
                guard let e = error as? NarInfoParseError else { return false }
                return e.line == 5 && e.description.contains(reasonHas)
            }
        }
    }

    @Test func signatureShapes() {
        #expect(NarInfoText.signatureProblem("cache.nixos.org-1:" + String(repeating: "A", count: 86) + "==") == nil)
        #expect(NarInfoText.signatureProblem("a b:AAAA") != nil)
        #expect(NarInfoText.signatureProblem("k:AAAA\n") != nil)
        #expect(NarInfoText.signatureProblem("k:AAA") != nil)
    }
}
