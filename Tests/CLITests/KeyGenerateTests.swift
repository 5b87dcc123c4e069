import Foundation
import TestSupport
import Testing

@Suite("nix-bridge key generate / public", .tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
struct KeyGenerateTests {
    @Test("files have nix-store --generate-binary-cache-key's format and modes")
    func sameAsNix() throws {
        let dir = try TestSupport.temporaryDirectory("nb-cli-gen")
        let ours = (dir.appendingPathComponent("ours.sk"), dir.appendingPathComponent("ours.pk"))
        let r = try CLI.run(["key", "generate", "nbkey-1", ours.0.path, ours.1.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.text.isEmpty)
        let theirs = try SigningFixtures.nixKeyPair(name: "nbkey-2", in: dir)
        #expect(try CLI.mode(ours.0) == 0o600)
        #expect(try CLI.mode(ours.0) == CLI.mode(theirs.secret))
        #expect(try CLI.mode(ours.1) == CLI.mode(theirs.public))
        let (sk, pk) = (try String(contentsOf: ours.0, encoding: .utf8), try String(contentsOf: ours.1, encoding: .utf8))
        let (nsk, npk) = (try String(contentsOf: theirs.secret, encoding: .utf8),
                          try String(contentsOf: theirs.public, encoding: .utf8))
        #expect(sk.hasPrefix("nbkey-1:") && pk.hasPrefix("nbkey-1:"))
        #expect(sk.count == nsk.count && pk.count == npk.count) // same-length names, no newline
        // Nix derives the same public key from our secret, and we from Nix's.
        let nixPublic = try TestSupport.nix(["key", "convert-secret-to-public"], input: Data(sk.utf8)).text
        #expect(nixPublic == pk)
        let ourPublic = try CLI.run(["key", "public", theirs.secret.path])
        #expect(ourPublic.status == 0)
        #expect(ourPublic.text == npk + "\n")
    }

    @Test("a generated key signs with nix store sign, and Nix then trusts the path")
    func worksWithNixSign() throws {
        let path = try SigningFixtures.inputAddressedPath.get()
        let dir = try TestSupport.temporaryDirectory("nb-cli-gen")
        let sk = dir.appendingPathComponent("sk"), pk = dir.appendingPathComponent("pk")
        #expect(try CLI.run(["key", "generate", "nbkey-sign", sk.path, pk.path]).status == 0)
        let cache = try SigningFixtures.fileCache(with: [path])
        let pub = try String(contentsOf: pk, encoding: .utf8)
        #expect(try SigningFixtures.nixVerify(cache: cache, path: path, trusted: pub).status != 0)
        try TestSupport.nix(["store", "sign", "--store", "file://\(cache.path)", "-k", sk.path, path])
        let v = try SigningFixtures.nixVerify(cache: cache, path: path, trusted: pub)
        #expect(v.status == 0, "\(v.stderr)")
    }

    @Test("existing files are replaced; the secret ends up 0600 even if it was 0644")
    func existingFiles() throws {
        let dir = try TestSupport.temporaryDirectory("nb-cli-gen")
        let sk = dir.appendingPathComponent("sk"), pk = dir.appendingPathComponent("pk")
        try "old".write(to: sk, atomically: false, encoding: .utf8)
        try "old".write(to: pk, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: sk.path)
        #expect(try CLI.run(["key", "generate", "again", sk.path, pk.path]).status == 0)
        #expect(try String(contentsOf: sk, encoding: .utf8).hasPrefix("again:"))
        #expect(try String(contentsOf: pk, encoding: .utf8).hasPrefix("again:"))
        #expect(try CLI.mode(sk) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["pk", "sk"])
    }

    @Test("errors are 'error: ...', exit 1, and never show a secret key")
    func errors() throws {
        let dir = try TestSupport.temporaryDirectory("nb-cli-gen")
        let sk = dir.appendingPathComponent("sk"), pk = dir.appendingPathComponent("pk")
        var r = try CLI.run(["key", "generate", "bad name", sk.path, pk.path])
        #expect(r.status == 1)
        #expect(r.stderr == "error: invalid key name 'bad name': it must be non-empty and contain no ':', whitespace or control characters\n")
        #expect(!FileManager.default.fileExists(atPath: sk.path))

        r = try CLI.run(["key", "public", dir.appendingPathComponent("missing").path])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: cannot access secret key file '\(dir.path)/missing': No such file"))

        // A secret key with one byte cut off: reported by length, the text is not echoed.
        #expect(try CLI.run(["key", "generate", "k", sk.path, pk.path]).status == 0)
        let secret = try String(contentsOf: sk, encoding: .utf8)
        let cut = String(secret.dropLast(4)) + "=="
        try cut.write(to: sk, atomically: false, encoding: .utf8)
        r = try CLI.run(["key", "public", sk.path])
        #expect(r.status == 1)
        #expect(r.stderr == "error: secret key file '\(sk.path)' is not valid: it decodes to 63 bytes, expected 64\n")
        #expect(!r.stderr.contains(String(secret.dropFirst(2).prefix(20))))

        r = try CLI.run(["key", "public", pk.path])
        #expect(r.stderr == "error: secret key file '\(pk.path)' is not valid: it decodes to 32 bytes, expected 64\n")
        #expect(r.text.isEmpty)
    }

    @Test("--version, --help and usage errors")
    func versionAndHelp() throws {
        #expect(try CLI.run(["--version"]).trimmed == "0.1.0")
        let help = try CLI.run(["key", "--help"]).text
        for sub in ["generate", "public", "sign", "verify"] { #expect(help.contains(sub)) }
        // Usage errors read like Nix's: `error: ...`, a hint, status 1.
        let usage = try CLI.run(["key", "generate", "only-a-name"])
        #expect(usage.status == 1)
        #expect(usage.stderr == "error: Missing expected argument '<secret-file>'\nTry 'nix-bridge --help' for more information.\n")
    }
}
