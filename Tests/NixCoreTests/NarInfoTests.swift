import Foundation
import NixCore
import TestSupport
import Testing

@Suite("NarInfo parse and render")
struct NarInfoTests {
    @Test("narinfo files written by real Nix parse and render back byte for byte",
          .tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
    func roundTripNixFiles() throws {
        let built = try SigningFixtures.inputAddressedPath.get()
        let dir = try TestSupport.temporaryDirectory()
        let added = try TestSupport.run(["nix-store", "--add", try write("round trip \(UUID())", in: dir)]).trimmed
        let signKeys = try SigningFixtures.nixKeyPair(name: "nbsign-rt", in: dir)
        let cache = try SigningFixtures.fileCache(with: [built, added])
        // Two signatures, so the sorted `Sig:` order is exercised too.
        let other = try SigningFixtures.nixKeyPair(name: "nbsign-rt-0", in: dir)
        for key in [signKeys.secret, other.secret] {
            try TestSupport.nix(["store", "sign", "--store", "file://\(cache.path)", "-k", key.path, built])
        }
        for path in [built, added] {
            let file = SigningFixtures.narinfoFile(path, in: cache)
            let text = try String(contentsOf: file, encoding: .utf8)
            let info = try NarInfo(parsing: text, whence: file.path)
            #expect(info.render() == text)
            #expect(StoreDirectory.default.print(info.pathInfo.path) == path)
            let json = try SigningFixtures.pathInfoJSON(path)
            #expect(info.pathInfo.narHash == (try Hash(parsing: json["narHash"] as? String ?? "")))
            #expect(info.pathInfo.narSize == (json["narSize"] as? NSNumber)?.uint64Value)
            let refs = (json["references"] as? [String] ?? []).sorted()
            #expect(info.pathInfo.sortedReferences.map { StoreDirectory.default.print($0) } == refs)
            #expect(info.pathInfo.ca.map(\.description) == json["ca"] as? String)
            #expect(info.pathInfo.deriver.map { StoreDirectory.default.print($0) } == json["deriver"] as? String)
        }
        let builtInfo = try NarInfo(parsing: String(contentsOf: SigningFixtures.narinfoFile(built, in: cache),
                                                    encoding: .utf8), whence: "x")
        #expect(builtInfo.pathInfo.sigs.count == 2)
        #expect(builtInfo.pathInfo.references.count == 2)
    }

    static let sample = """
        StorePath: /nix/store/7rjj86a15146cq1d3qy068lml7n8ykzm-hello-2.12
        URL: nar/0a8k5j3xgpm8dqdhfzkd6mzv7j37wffspxrbm2ybph6qxq0fbgqh.nar.xz
        Compression: xz
        FileHash: sha256:0a8k5j3xgpm8dqdhfzkd6mzv7j37wffspxrbm2ybph6qxq0fbgqh
        FileSize: 50088
        NarHash: sha256:1b3fmh6y3l0dqa0cvvlh7ggfiw8g0jr1bvnjr9g70nh1w8w2dm7b
        NarSize: 226560
        References: 7rjj86a15146cq1d3qy068lml7n8ykzm-hello-2.12 yzjgl0h6a3qvsz8b2rjmhxwm3b7jqmvz-glibc-2.35

        """

    @Test("unknown keys are ignored, a missing Compression means bzip2, later keys win")
    func nixQuirks() throws {
        let text = Self.sample.replacingOccurrences(of: "Compression: xz\n", with: "")
            + "Deriver: unknown-deriver\nX-Extra: whatever: here\nURL: nar/other.nar\nSystem:\n"
        let info = try NarInfo(parsing: text, whence: "quirks.narinfo")
        #expect(info.compression == "bzip2")
        #expect(info.pathInfo.deriver == nil)
        #expect(info.url == "nar/other.nar")
        #expect(info.pathInfo.references.count == 2)
        #expect(!info.render().contains("X-Extra"))
        #expect(info.system == "" && !info.render().contains("System"))
    }

    @Test("errors name the file, the line and what was expected", arguments: [
        ("NarSize: 12x\n", 9, "expected a non-negative integer in 'NarSize', got '12x'"),
        ("NarHash: 1b3fmh6y3l0dqa0cvvlh7ggfiw8g0jr1bvnjr9g70nh1w8w2dm7b\n", 9, "expected a hash with its type in 'NarHash'"),
        ("References: not-a-path\n", 9, "duplicate"),
        ("Deriver: x\n", 9, "expected a store path in 'Deriver'"),
        ("no colon here\n", 9, "expected 'Key: value'"),
        ("Sig:x\n", 9, "expected ': ' after 'Sig'"),
        ("CA: fixed:md6:abc\n", 9, "expected a content address in 'CA'"),
        ("CA: text:sha256:1b3fmh6y3l0dqa0cvvlh7ggfiw8g0jr1bvnjr9g70nh1w8w2dm7b\nCA: text:sha256:1b3fmh6y3l0dqa0cvvlh7ggfiw8g0jr1bvnjr9g70nh1w8w2dm7b\n", 10, "'CA' appears more than once"),
    ])
    func errors(appended: String, line: Int, expected: String) {
        // A second non-empty References line is corrupt in Nix; spell that case out.
        let expectedText = expected == "duplicate" ? "'References' appears more than once" : expected
        do {
            _ = try NarInfo(parsing: Self.sample + appended, whence: "/cache/bad.narinfo")
            Issue.record("parsed, but should fail with \(expectedText)")
        } catch {
            #expect(error.file == "/cache/bad.narinfo")
            #expect(error.line == line)
            #expect(error.description.hasPrefix("NAR info file '/cache/bad.narinfo' is corrupt: line \(line): "))
            #expect(error.description.contains(expectedText))
        }
    }

    @Test("required fields and the final newline", arguments: [
        ("StorePath: ", "expected a non-empty 'StorePath' field"),
        ("NarHash: ", "expected a non-empty 'NarHash' field"),
        ("URL: ", "expected a non-empty 'URL' field"),
        ("NarSize: ", "expected a non-empty 'NarSize' field"),
    ])
    func missingFields(prefix: String, expected: String) {
        let text = Self.sample.split(separator: "\n").filter { !$0.hasPrefix(prefix) }.joined(separator: "\n") + "\n"
        #expect(throws: NarInfoParseError.self) { try NarInfo(parsing: text, whence: "f") }
        do { _ = try NarInfo(parsing: text, whence: "f") } catch { #expect(error.description.contains(expected)) }
    }

    @Test("a last line without newline is refused, as Nix does")
    func finalNewline() {
        do {
            _ = try NarInfo(parsing: String(Self.sample.dropLast()), whence: "f")
            Issue.record("parsed without final newline")
        } catch {
            #expect(error.reason == .missingNewline)
            #expect(error.line == 8)
        }
        #expect(throws: NarInfoParseError.self) {
            try NarInfo(parsing: String(repeating: "x", count: NarInfo.maxSize + 1), whence: "big")
        }
    }

    @Test("signatures are inserted without touching other bytes, once")
    func addingSignature() throws {
        let withCA = Self.sample + "CA: fixed:r:sha256:1b3fmh6y3l0dqa0cvvlh7ggfiw8g0jr1bvnjr9g70nh1w8w2dm7b\n"
        let one = try #require(NarInfo.addingSignature("k:AAAA", to: withCA))
        #expect(one == Self.sample + "Sig: k:AAAA\nCA: fixed:r:sha256:1b3fmh6y3l0dqa0cvvlh7ggfiw8g0jr1bvnjr9g70nh1w8w2dm7b\n")
        let two = try #require(NarInfo.addingSignature("j:BBBB", to: one))
        #expect(two.contains("Sig: k:AAAA\nSig: j:BBBB\nCA: "))
        #expect(NarInfo.addingSignature("k:AAAA", to: two) == nil)
        #expect(NarInfo.addingSignature("k:AAAA", to: Self.sample) == Self.sample + "Sig: k:AAAA\n")
    }

    private func write(_ text: String, in dir: URL) throws -> String {
        let url = dir.appendingPathComponent("nbsign-file")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }
}
