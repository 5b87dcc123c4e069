import NixCore
import Testing

@Suite("Fingerprints")
struct FingerprintTests {
    let dir = StoreDirectory.default

    @Test("format: 1;path;sha256:nix32;size;sorted full references")
    func format() throws {
        let a = try StorePath(baseName: "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-a")
        let b = try StorePath(baseName: "00000000000000000000000000000000-b")
        let me = try StorePath(baseName: "7rjj86a15146cq1d3qy068lml7n8ykzm-me")
        let h = HashSink.hash(.sha256, string: "nar")
        let info = PathInfo(path: me, narHash: h, references: [a, b, me], narSize: 42)
        #expect(try info.fingerprint() == "1;/nix/store/\(me.baseName);sha256:\(h.string(.nix32, withAlgorithm: false));42;"
            + "/nix/store/\(b.baseName),/nix/store/\(me.baseName),/nix/store/\(a.baseName)")
        let none = PathInfo(path: me, narHash: h, narSize: 1)
        #expect(try none.fingerprint(in: StoreDirectory("/tmp/s/")) == "1;/tmp/s/\(me.baseName);\(h);1;")
    }

    @Test("unknown size and non-SHA-256 NAR hashes are refused")
    func refused() throws {
        let me = try StorePath(baseName: "7rjj86a15146cq1d3qy068lml7n8ykzm-me")
        #expect(throws: FingerprintError.unknownSize(path: "/nix/store/\(me.baseName)")) {
            try PathInfo(path: me, narHash: HashSink.hash(.sha256, string: ""), narSize: 0).fingerprint()
        }
        #expect(throws: FingerprintError.notSHA256(path: "/nix/store/\(me.baseName)", algorithm: .sha512)) {
            try PathInfo(path: me, narHash: HashSink.hash(.sha512, string: ""), narSize: 3).fingerprint()
        }
        #expect(FingerprintError.unknownSize(path: "/p").description
            == "cannot calculate fingerprint of path '/p' because its size is not known")
    }
}
