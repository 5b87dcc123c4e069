import Foundation
import NixCore
import TestSupport
import Testing

@Suite("Content addresses and the CA check", .tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct ContentAddressTests {
    @Test("real content-addressed paths check out; their CA renders as Nix's")
    func realPaths() throws {
        let paths = try SigningFixtures.caPaths()
        var kinds = Set<String>()
        for path in paths {
            let json = try SigningFixtures.pathInfoJSON(path)
            let caText = try #require(json["ca"] as? String)
            let ca = try ContentAddress(parsing: caText)
            #expect(ca.description == caText)
            kinds.insert(String(caText.prefix(while: { $0 != ":" })) + (caText.contains(":r:") ? ":r" : ""))
            let info = try SigningFixtures.pathInfo(path)
            // Only `fixed:r:sha256` is proved by the info alone (its hash is the NAR hash);
            // the others need the NAR, which Nix hashes on import as the verifier does.
            if caText.hasPrefix("fixed:r:sha256:") {
                #expect(info.contentAddressCheck() == .valid, "\(path) with \(caText)")
                #expect(info.isContentAddressed())
            } else {
                #expect(info.contentAddressCheck() == .needsContent, "\(path) with \(caText)")
            }
            let nar = try TestSupport.run(["nix-store", "--dump", path]).stdout
            #expect(throws: Never.self) { try ContentAddressVerifier.check([UInt8](nar), of: info.path, against: ca, storeDir: .default) }
            // One byte of the contents changed (the NAR keeps its shape): refused.
            var tampered = [UInt8](nar)
            tampered[tampered.count - 24] ^= 1
            #expect(throws: ContentAddressMismatch.self) { try ContentAddressVerifier.check(tampered, of: info.path, against: ca, storeDir: .default) }
        }
        #expect(kinds == ["fixed:r", "fixed", "text"])
        // The text path refers to the first: references are part of its address.
        #expect(try SigningFixtures.pathInfo(paths[3]).references.count == 1)
    }

    @Test("a false CA claim is caught: other name, other references, other hash, input-addressed")
    func falseClaims() throws {
        let paths = try SigningFixtures.caPaths()
        let text = try SigningFixtures.pathInfo(paths[3])
        var noRefs = text
        noRefs.references = []
        guard case .mismatch(let computed?) = noRefs.contentAddressCheck() else {
            Issue.record("dropping a reference should change the path")
            return
        }
        #expect(computed != text.path)

        var renamed = try SigningFixtures.pathInfo(paths[0])
        renamed.path = try StorePath(baseName: renamed.path.hashPart + "-other-name")
        #expect(renamed.contentAddressCheck() != .valid)

        var otherHash = try SigningFixtures.pathInfo(paths[1])
        otherHash.ca = .fixed(.flat, HashSink.hash(.sha1, string: "something else"))
        #expect(otherHash.contentAddressCheck() != .valid)

        // A flat fixed-output path cannot have references (Nix asserts so).
        var flatWithRef = try SigningFixtures.pathInfo(paths[1])
        flatWithRef.references = [try StoreDirectory.default.parse(paths[0])]
        #expect(flatWithRef.contentAddressCheck() == .mismatch(computed: nil))

        // `fixed:r:sha256:H` names the NAR hash: a NAR with another hash cannot be the path's.
        var otherNAR = try SigningFixtures.pathInfo(paths[0])
        otherNAR.narHash = HashSink.hash(.sha256, string: "another NAR")
        #expect(otherNAR.contentAddressCheck() == .hashMismatch(specified: otherNAR.ca!.hash, narHash: otherNAR.narHash))
        #expect(!otherNAR.isContentAddressed())

        let built = try SigningFixtures.pathInfo(try SigningFixtures.inputAddressedPath.get())
        #expect(built.contentAddressCheck() == .notContentAddressed)
        var claimed = built
        claimed.ca = .fixed(.recursive, built.narHash)
        #expect(claimed.contentAddressCheck() != .valid)
    }
}

@Suite("ContentAddress parsing")
struct ContentAddressParsingTests {
    @Test("digests in base16, nix32 and base64 parse; renders use nix32")
    func encodings() throws {
        let h = HashSink.hash(.sha256, string: "x")
        for digest in [h.string(.base16, withAlgorithm: false), h.string(.nix32, withAlgorithm: false),
                       h.string(.base64, withAlgorithm: false)] {
            #expect(try ContentAddress(parsing: "text:sha256:" + digest) == .text(h))
            #expect(try ContentAddress(parsing: "fixed:r:sha256:" + digest) == .fixed(.recursive, h))
        }
        #expect(ContentAddress.text(h).description == "text:" + h.string(.nix32))
        let s1 = HashSink.hash(.sha1, string: "x")
        #expect(try ContentAddress(parsing: "fixed:sha1:" + s1.string(.nix32, withAlgorithm: false)) == .fixed(.flat, s1))
    }

    @Test("bad addresses are refused with Nix's words", arguments: [
        ("nonsense", "not a content address because it is not in the form '<prefix>:<rest>'"),
        ("blob:sha256:abc", "content address prefix 'blob' is unrecognized"),
        ("text:abc", "content address hash must be in form '<algo>:<hash>'"),
        ("text:sha1:a9993e364706816aba3e25717850c26c9cd0d89d", "text content address hash should use sha256"),
        ("fixed:sha256:xyz", "invalid content address"),
        ("fixed:sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "content address hash must be in form"),
    ])
    func refused(input: String, expected: String) {
        do {
            _ = try ContentAddress(parsing: input)
            Issue.record("\(input) parsed")
        } catch {
            #expect(error.description.contains(expected), "\(error)")
        }
    }
}
