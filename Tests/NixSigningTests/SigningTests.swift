import Foundation
import NixCore
import NixSigning
import TestSupport
import Testing

@Suite("Signing beside real Nix", .tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct SigningWithNixTests {
    @Test("keys from nix-store --generate-binary-cache-key load; our signature equals Nix's byte for byte")
    func signatureMatchesNix() throws {
        let path = try SigningFixtures.inputAddressedPath.get()
        let dir = try TestSupport.temporaryDirectory("nb-sign")
        let name = "nbsign-\(UUID().uuidString.prefix(8))"
        let (sk, pk) = try SigningFixtures.nixKeyPair(name: name, in: dir)
        let secret = try KeyFiles.readSecretKey(sk.path)
        let nixPublic = try String(contentsOf: pk, encoding: .utf8)
        #expect(secret.name == name)
        #expect(secret.publicKey.description == nixPublic)
        #expect(try KeyFiles.readPublicKey(pk.path) == secret.publicKey)

        let cache = try SigningFixtures.fileCache(with: [path])
        try TestSupport.nix(["store", "sign", "--store", "file://\(cache.path)", "-k", sk.path, path])
        let file = SigningFixtures.narinfoFile(path, in: cache)
        let info = try NarInfo(parsing: String(contentsOf: file, encoding: .utf8), whence: file.path)
        let nixSig = try #require(info.pathInfo.sigs.first { $0.hasPrefix(name + ":") })
        let fingerprint = try info.pathInfo.fingerprint()
        #expect(info.pathInfo.references.count == 2)
        #expect(secret.sign(fingerprint).description == nixSig)

        // The same through a PathInfo built from `nix path-info --json` (the wire's view).
        let fromJSON = try SigningFixtures.pathInfo(path)
        #expect(try fromJSON.fingerprint() == fingerprint)

        let trusted = try TrustedKeys(parsing: "other:\(Base64.encode([UInt8](repeating: 1, count: 32))) \(nixPublic)")
        let verdict = trusted.verify(info.pathInfo)
        #expect(verdict.isTrusted)
        #expect(verdict.verifiedBy.map(\.name) == [name])
    }

    @Test("a content-addressed path needs no signature; an input-addressed one does")
    func contentAddressedNeedsNone() throws {
        let ca = try SigningFixtures.pathInfo(try SigningFixtures.caPaths()[0])
        let none = TrustedKeys([])
        #expect(ca.sigs.isEmpty)
        #expect(none.verify(ca).isTrusted)
        let built = try SigningFixtures.pathInfo(try SigningFixtures.inputAddressedPath.get())
        let verdict = none.verify(built)
        #expect(!verdict.isTrusted)
        #expect(verdict.description.hasPrefix(
            "path '\(StoreDirectory.default.print(built.path))' is not signed by any of the keys in 'trusted-public-keys'"))
    }
}

@Suite("Keys, signatures and trust")
struct SigningUnitTests {
    let info: PathInfo = {
        let p = try! StorePath(baseName: "7rjj86a15146cq1d3qy068lml7n8ykzm-hello")
        return PathInfo(path: p, narHash: HashSink.hash(.sha256, string: "nar"), narSize: 100)
    }()

    @Test("generate, sign, verify; public key and signature texts have Nix's shape")
    func roundTrip() throws {
        let key = try SecretKey.generate(name: "cache.example.org-1")
        let again = try SecretKey(parsing: key.fileContents)
        #expect(again.publicKey == key.publicKey)
        #expect(key.fileContents.count == "cache.example.org-1:".count + 88)
        #expect(key.publicKey.description.count == "cache.example.org-1:".count + 44)
        let fp = try info.fingerprint()
        let sig = key.sign(fp)
        #expect(sig.keyName == "cache.example.org-1")
        #expect(try key.sign(info) == sig)
        #expect(try Signature(parsing: sig.description) == sig)
        #expect(key.publicKey.verify(sig, message: fp))
        #expect(!key.publicKey.verify(sig, message: fp + "x"))
        #expect(!(try SecretKey.generate(name: "cache.example.org-1")).publicKey.verify(sig, message: fp))
        #expect(!key.description.contains(key.fileContents.split(separator: ":")[1]))
    }

    @Test("trust: only trusted key names count, distinct keys, sigsNeeded")
    func trust() throws {
        let k1 = try SecretKey.generate(name: "k1"), k2 = try SecretKey.generate(name: "k2")
        let stranger = try SecretKey.generate(name: "stranger")
        let fp = try info.fingerprint()
        var signed = info
        signed.sigs = [k1.sign(fp).description, stranger.sign(fp).description]
        let trusted = TrustedKeys([k1.publicKey, k2.publicKey])
        var v = trusted.verify(signed)
        #expect(v.isTrusted)
        #expect(v.verifiedBy == [k1.publicKey])
        #expect(v.rejected.map(\.check) == [.untrustedKey(keyName: "stranger")])
        #expect(!trusted.verify(signed, sigsNeeded: 2).isTrusted)
        signed.sigs.insert(k2.sign(fp).description)
        v = trusted.verify(signed, sigsNeeded: 2)
        #expect(v.isTrusted && v.verifiedBy.count == 2)
        #expect(trusted.verify(signed, sigsNeeded: 0).sigsNeeded == 1)

        // A signature by a trusted name that does not match, and one of the wrong length.
        var forged = info
        forged.sigs = [k2.sign(fp + "x").description.replacingOccurrences(of: "k2:", with: "k1:"),
                       "k2:" + Base64.encode([UInt8](repeating: 7, count: 63))]
        v = trusted.verify(forged)
        #expect(!v.isTrusted)
        #expect(v.rejected.contains { $0.check == .mismatch(k1.publicKey) })
        #expect(v.rejected.contains { if case .malformed = $0.check { return true } else { return false } })
        #expect(v.description.contains("signature by 'k1' does not match the path's fingerprint"))

        // Same name twice in trusted-public-keys: the first wins, as in Nix's std::map.
        let dup = TrustedKeys([k2.publicKey, PublicKey(renaming: k1.publicKey, to: "k2")])
        #expect(dup.keys.count == 1 && dup.key(named: "k2") == k2.publicKey)

        // Many keys: the dictionary path finds them too.
        let many = try (0..<20).map { try SecretKey.generate(name: "m\($0)") }
        let big = TrustedKeys(many.map(\.publicKey) + [k1.publicKey])
        var bigSigned = info
        bigSigned.sigs = [k1.sign(fp).description]
        #expect(big.verify(bigSigned).verifiedBy == [k1.publicKey])
    }

    @Test("size 0 paths are reported, not trusted")
    func unknownSize() throws {
        var zero = info
        zero.narSize = 0
        let v = TrustedKeys([]).verify(zero)
        #expect(!v.isTrusted)
        #expect(v.fingerprintError == .unknownSize(path: "/nix/store/7rjj86a15146cq1d3qy068lml7n8ykzm-hello"))
    }

    @Test("key parse errors are typed and never show the key", arguments: [
        ("nokey", KeyError.Reason.missingName),
        (":QUJD", .missingName),
        ("name:", .missingKey),
        ("name:\n", .missingKey),
        ("name:QU*D", .badBase64(character: "*")),
        ("name:QUJD", .wrongLength(got: 3, expected: 64)),
    ])
    func secretKeyErrors(text: String, reason: KeyError.Reason) {
        do {
            _ = try SecretKey(parsing: text, source: "/keys/sk")
            Issue.record("parsed \(text)")
        } catch {
            #expect(error.reason == reason)
            #expect(error.kind == .secret && error.source == "/keys/sk")
            #expect(error.description.hasPrefix("secret key file '/keys/sk' is"))
        }
    }

    @Test("a secret key of the wrong length is not echoed; a trailing newline is fine")
    func secretNotEchoed() throws {
        let key = try SecretKey.generate(name: "n")
        let b64 = String(key.fileContents.dropFirst(2))
        do {
            _ = try PublicKey(parsing: key.fileContents)
            Issue.record("a secret key parsed as a public key")
        } catch {
            #expect(!error.description.contains(b64))
            #expect(error.reason == .wrongLength(got: 64, expected: 32))
        }
        #expect(try SecretKey(parsing: key.fileContents + "\n").publicKey == key.publicKey)
        #expect(throws: KeyError.self) { try SecretKey.generate(name: "has space") }
        #expect(throws: KeyError.self) { try SecretKey.generate(name: "a:b") }
        #expect(throws: KeyError.self) { try SecretKey.generate(name: "") }
        #expect(throws: KeyError.self) { try TrustedKeys(parsing: "good:\(Base64.encode([UInt8](repeating: 0, count: 32))) bad") }
    }
}

extension PublicKey {
    /// The same key bytes under another name (tests only).
    init(renaming key: PublicKey, to name: String) {
        let b64 = key.description.split(separator: ":", maxSplits: 1)[1]
        self = try! PublicKey(parsing: name + ":" + b64)
    }
}
