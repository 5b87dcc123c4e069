import Foundation
import TestSupport
import Testing

@Suite("nix-bridge key sign / verify beside nix store verify",
       .tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
struct KeySignVerifyTests {
    /// A fresh cache holding the input-addressed test path, and a Nix-made key pair.
    struct Setup {
        var path: String
        var cache: URL
        var narinfo: URL
        var secret: URL
        var publicKey: String
        var name: String

        init() throws {
            path = try SigningFixtures.inputAddressedPath.get()
            cache = try SigningFixtures.fileCache(with: [path], label: "nb-cli-cache")
            narinfo = SigningFixtures.narinfoFile(path, in: cache)
            // Sigs the local store may hold from elsewhere are irrelevant: not our key names.
            name = "nbcli-\(UUID().uuidString.prefix(8))"
            let keys = try SigningFixtures.nixKeyPair(name: name, in: try TestSupport.temporaryDirectory("nb-cli-keys"))
            secret = keys.secret
            publicKey = try String(contentsOf: keys.public, encoding: .utf8)
        }

        func ourVerify(_ extra: [String] = [], trusted: String? = nil) throws -> TestSupport.Output {
            try CLI.run(["key", "verify", "--trusted-public-keys", trusted ?? publicKey] + extra + [narinfo.path])
        }

        func nixVerify(trusted: String? = nil, sigsNeeded: Int = 1) throws -> TestSupport.Output {
            try SigningFixtures.nixVerify(cache: cache, path: path, trusted: trusted ?? publicKey, sigsNeeded: sigsNeeded)
        }

        func text() throws -> String { try String(contentsOf: narinfo, encoding: .utf8) }
    }

    @Test("unsigned: refused by both; signed by us: accepted by both; signing twice adds nothing")
    func signAccepted() throws {
        let s = try Setup()
        #expect(try s.nixVerify().status != 0)
        var ours = try s.ourVerify()
        #expect(ours.status == 1)
        #expect(ours.stderr.contains("path '\(s.path)' is not signed by any of the keys in 'trusted-public-keys'"))

        let before = try s.text()
        let signed = try CLI.run(["key", "sign", "--key-file", s.secret.path, s.narinfo.path])
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(signed.stderr == "added 1 signatures\n")
        let after = try s.text()
        #expect(after.hasPrefix(before))
        #expect(after.dropFirst(before.count).hasPrefix("Sig: \(s.name):"))
        let nix = try s.nixVerify()
        #expect(nix.status == 0, "\(nix.stderr)")
        ours = try s.ourVerify()
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(ours.text == "\(s.narinfo.path): path '\(s.path)' is signed by '\(s.name)'\n")

        let again = try CLI.run(["key", "sign", "-k", s.secret.path, s.narinfo.path])
        #expect(again.status == 0)
        #expect(again.stderr == "added 0 signatures\n")
        #expect(try s.text() == after)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: s.cache.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    @Test("our signature is the one nix store sign makes")
    func sameAsNixSign() throws {
        let s = try Setup()
        #expect(try CLI.run(["key", "sign", "-k", s.secret.path, s.narinfo.path]).status == 0)
        let ourLine = try s.text().split(separator: "\n").first { $0.hasPrefix("Sig: \(s.name):") }
        let other = try Setup()
        try TestSupport.nix(["store", "sign", "--store", "file://\(other.cache.path)", "-k", s.secret.path, s.path])
        let nixLine = try other.text().split(separator: "\n").first { $0.hasPrefix("Sig: \(s.name):") }
        #expect(ourLine != nil)
        #expect(ourLine == nixLine)
    }

    @Test("tampered narinfo files are refused by Nix and by us", arguments: ["NarHash", "bad signature", "untrusted key name"])
    func tampered(kind: String) throws {
        let s = try Setup()
        #expect(try CLI.run(["key", "sign", "-k", s.secret.path, s.narinfo.path]).status == 0)
        var lines = try s.text().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let sigIndex = try #require(lines.firstIndex { $0.hasPrefix("Sig: \(s.name):") })
        let expected: String
        switch kind {
        case "NarHash":
            let i = try #require(lines.firstIndex { $0.hasPrefix("NarHash: ") })
            lines[i] = "NarHash: sha256:" + String(repeating: "1", count: 52)
            expected = "does not match the path's fingerprint"
        case "bad signature":
            // A valid signature by the same key, of another path's fingerprint.
            let ca = try ContentAddressPath.make()
            let caCache = try SigningFixtures.fileCache(with: [ca])
            try TestSupport.nix(["store", "sign", "--store", "file://\(caCache.path)", "-k", s.secret.path, ca])
            let caText = try String(contentsOf: SigningFixtures.narinfoFile(ca, in: caCache), encoding: .utf8)
            let otherSig = try #require(caText.split(separator: "\n").first { $0.hasPrefix("Sig: \(s.name):") })
            lines[sigIndex] = String(otherSig)
            expected = "does not match the path's fingerprint"
        default:
            lines[sigIndex] = lines[sigIndex].replacingOccurrences(of: "Sig: \(s.name):", with: "Sig: stranger:")
            expected = "no key named 'stranger' in 'trusted-public-keys'"
        }
        try lines.joined(separator: "\n").write(to: s.narinfo, atomically: true, encoding: .utf8)
        #expect(try s.nixVerify().status != 0)
        let ours = try s.ourVerify()
        #expect(ours.status == 1)
        #expect(ours.stderr.contains("is not signed by any of the keys in 'trusted-public-keys'"), "\(ours.stderr)")
        #expect(ours.stderr.contains(expected), "\(ours.stderr)")
    }

    @Test("--sigs-needed counts distinct trusted keys, as nix store verify does")
    func sigsNeeded() throws {
        let s = try Setup()
        let second = try SigningFixtures.nixKeyPair(name: s.name + "-b", in: try TestSupport.temporaryDirectory("nb-cli-keys"))
        let both = s.publicKey + " " + (try String(contentsOf: second.public, encoding: .utf8))
        #expect(try CLI.run(["key", "sign", "-k", s.secret.path, s.narinfo.path]).status == 0)
        #expect(try s.nixVerify(trusted: both, sigsNeeded: 2).status != 0)
        var ours = try s.ourVerify(["--sigs-needed", "2"], trusted: both)
        #expect(ours.status == 1)
        #expect(ours.stderr.contains("it has 1 valid signature(s) ('\(s.name)'), 2 needed"))
        #expect(try CLI.run(["key", "sign", "-k", second.secret.path, s.narinfo.path]).status == 0)
        #expect(try s.nixVerify(trusted: both, sigsNeeded: 2).status == 0)
        ours = try s.ourVerify(["--sigs-needed", "2"], trusted: both)
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(ours.text.contains("is signed by '\(s.name)', '\(s.name)-b'")
            || ours.text.contains("is signed by '\(s.name)-b', '\(s.name)'"))
    }

    @Test("content-addressed paths need no signature, for Nix and for us")
    func contentAddressed() throws {
        let path = try ContentAddressPath.make()
        let cache = try SigningFixtures.fileCache(with: [path])
        let narinfo = SigningFixtures.narinfoFile(path, in: cache)
        let key = "k:" + String(repeating: "A", count: 43) + "="
        #expect(try SigningFixtures.nixVerify(cache: cache, path: path, trusted: key).status == 0)
        let ours = try CLI.run(["key", "verify", "--trusted-public-keys", key, narinfo.path])
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(ours.text.contains("is content-addressed and needs no signature"))
    }

    @Test("a corrupt file stops signing before anything is written")
    func corruptStopsAll() throws {
        let s = try Setup()
        let good = try s.text()
        let bad = s.cache.appendingPathComponent("bad.narinfo")
        try "StorePath: /nix/store/x\n".write(to: bad, atomically: true, encoding: .utf8)
        let r = try CLI.run(["key", "sign", "-k", s.secret.path, s.narinfo.path, bad.path])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: NAR info file '\(bad.path)' is corrupt: line 1: expected a store path in 'StorePath'"))
        #expect(try s.text() == good)

        let v = try CLI.run(["key", "verify", "--trusted-public-keys", s.publicKey, bad.path])
        #expect(v.status == 1)
        #expect(v.stderr.contains("error: NAR info file '\(bad.path)' is corrupt"))
        let badKey = try CLI.run(["key", "verify", "--trusted-public-keys", "nocolon", s.narinfo.path])
        #expect(badKey.status == 1)
        #expect(badKey.stderr.hasPrefix("error: public key is corrupt"))
    }
}

/// A content-addressed path made now with `nix-store --add`.
enum ContentAddressPath {
    static func make() throws -> String {
        let dir = try TestSupport.temporaryDirectory("nb-cli-ca")
        let file = dir.appendingPathComponent("nbcli-ca")
        try "ca \(UUID())".write(to: file, atomically: true, encoding: .utf8)
        return try TestSupport.run(["nix-store", "--add", file.path]).trimmed
    }
}
