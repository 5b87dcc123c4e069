import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge path-info` and `key sign --store` over ssh-ng, beside real Nix 2.8 on the
/// same builder store.
@Suite("nix-bridge path-info / key sign over ssh-ng", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class StoreCLITests {
    let env: Fleet
    /// A 12-path closure in builder 1's store.
    let fixture: StoreFixture
    let root: String

    init() throws {
        env = try Fleet(count: 1, label: "nb-cli-fleet")
        fixture = try StoreFixture.closure(size: 12, rootName: "cli-root", seed: 7)
        root = StoreDirectory.default.print(try #require(fixture.roots.first))
    }

    /// Builder 1's store, holding the fixture (signed with `key`, if given).
    func makeStore(signedWith key: SigningKey?) throws {
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: fixture, signWith: key)
    }

    func key(_ name: String) throws -> SigningKey { try SigningKey.generate(name: name, in: env.work) }

    static func parse(_ data: Data) throws -> [String: [String: Any]] {
        let list = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        var out: [String: [String: Any]] = [:]
        for o in list { out[try #require(o["path"] as? String)] = o }
        return out
    }

    @Test func pathInfoJSONMatchesNix() throws {
        try makeStore(signedWith: try key("fx-json-1"))
        let ca = try env.addFile(1, name: "ca.txt", contents: "content-addressed\n")
        let paths = [root, fixture.printedPaths[0], ca]
        let ours = try env.bridge(["path-info", "--json-list", "--store", "ssh-ng://builder1"] + paths)
        #expect(ours.status == 0, "\(ours.stderr)")
        let nix = try env.nix(["path-info", "--json", "--store", "ssh-ng://builder1"] + paths)
        let a = try Self.parse(ours.stdout), b = try Self.parse(nix.stdout)
        #expect(Set(a.keys) == Set(paths))
        #expect(Set(a.keys) == Set(b.keys))
        for p in paths {
            let x = try #require(a[p]), y = try #require(b[p])
            let ourHash = try #require(x["narHash"] as? String), nixHash = try #require(y["narHash"] as? String)
            #expect(try Hash(parsing: ourHash) == (try Hash(parsing: nixHash)))
            // The same printed form, too (Nix 2.8 prints SRI in JSON).
            #expect(ourHash == nixHash)
            #expect(x["narSize"] as? Int == y["narSize"] as? Int)
            #expect(x["references"] as? [String] == y["references"] as? [String])
            #expect((x["signatures"] as? [String]).map(Set.init) == (y["signatures"] as? [String]).map(Set.init))
            #expect(x["ca"] as? String == y["ca"] as? String)
            #expect(x["deriver"] as? String == y["deriver"] as? String)
        }
        #expect(try #require(a[ca])["ca"] as? String != nil)
        #expect((try #require(a[root])["signatures"] as? [String])?.count == 1)
    }

    @Test func recursiveClosureMatchesNix() throws {
        try makeStore(signedWith: nil)
        let ours = try env.bridge(["path-info", "-r", "--store", "ssh-ng://builder1", root])
        #expect(ours.status == 0, "\(ours.stderr)")
        let nix = try env.nix(["path-info", "-r", "--store", "ssh-ng://builder1", root])
        let lines = ours.text.split(separator: "\n").map(String.init)
        #expect(lines.count == fixture.items.count)
        #expect(Set(lines) == Set(nix.text.split(separator: "\n").map(String.init)))
        #expect(Set(lines) == Set(fixture.printedPaths))
    }

    @Test func sigsOutputMatchesNix() throws {
        try makeStore(signedWith: try key("fx-sigs-1"))
        let ca = try env.addFile(1, name: "ca.txt", contents: "ca for --sigs\n")
        let args = ["path-info", "--sigs", "-r", "--store", "ssh-ng://builder1", root, ca]
        let ours = try env.bridge(args)
        #expect(ours.status == 0, "\(ours.stderr)")
        let nix = try env.nix(args)
        // Dependencies first, as Nix orders them: the whole text matches (padding, ca:, signatures).
        #expect(ours.text == nix.text)
        #expect(ours.text.contains("\tca:fixed:r:sha256:"))
        #expect(ours.text.contains(" fx-sigs-1:") || ours.text.contains("\tfx-sigs-1:"))
    }

    @Test func missingPath() throws {
        try makeStore(signedWith: nil)
        let missing = "/nix/store/00000000000000000000000000000000-not-there"
        let ours = try env.bridge(["path-info", "--store", "ssh-ng://builder1", root, missing])
        #expect(ours.status == 1)
        #expect(ours.stdout.isEmpty)
        #expect(ours.stderr == "error: path '\(missing)' is not valid\n")
        let notAPath = try env.bridge(["path-info", "--store", "ssh-ng://builder1", "/tmp/x"])
        #expect(notAPath.status == 1)
        #expect(notAPath.stderr.hasPrefix("error: "))
    }

    // MARK: key sign --store

    func verify(_ k: SigningKey, _ paths: [String]) throws -> TestSupport.Output {
        try env.nix(["store", "verify", "--store", env.localStore(1), "--sigs-needed", "1",
                     "--trusted-public-keys", k.publicKey] + paths, check: false)
    }

    func sigs(_ path: String) throws -> [String] {
        let out = try env.nix(["path-info", "--sigs", "--store", env.localStore(1), path])
        let fields = out.text.split(separator: "\n").first?.split(separator: "\t", omittingEmptySubsequences: false).dropFirst().first ?? ""
        return fields.split(separator: " ").map(String.init).filter { !$0.hasPrefix("ca:") && $0 != "ultimate" }
    }

    @Test func signPathsLikeNixStoreSign() throws {
        try makeStore(signedWith: nil)
        let k = try key("nb-sign-1")
        #expect(try verify(k, [root]).status != 0)
        let first = try env.bridge(["key", "sign", "--store", "ssh-ng://builder1", "-k", k.secretKeyFile.path, root])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr == "added 1 signatures\n")
        #expect(try sigs(root).contains { $0.hasPrefix("nb-sign-1:") })
        let v = try verify(k, [root])
        #expect(v.status == 0, "\(v.stderr)")
        // Twice: nothing new.
        let again = try env.bridge(["key", "sign", "--store", "ssh-ng://builder1", "--key-file", k.secretKeyFile.path, root])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr == "added 0 signatures\n")
        #expect(try sigs(root).count == 1)
        // Nix computes the very same signature: it has nothing to add either.
        let nix = try env.nix(["store", "sign", "--store", env.localStore(1), "-k", k.secretKeyFile.path, root])
        #expect(nix.stderr.contains("added 0 signatures"), "\(nix.stderr)")
        // The rest of the closure is untouched.
        #expect(try verify(k, [fixture.printedPaths[0]]).status != 0)
    }

    @Test func signRecursiveAndAll() throws {
        try makeStore(signedWith: nil)
        let k = try key("nb-sign-r")
        let r = try env.bridge(["key", "sign", "--store", "ssh-ng://builder1", "-k", k.secretKeyFile.path, "-r", root])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr == "added \(fixture.items.count) signatures\n")
        let v = try verify(k, fixture.printedPaths)
        #expect(v.status == 0, "\(v.stderr)")

        let ca = try env.addFile(1, name: "extra.txt", contents: "not in the closure\n")
        let k2 = try key("nb-sign-all")
        let all = try env.bridge(["key", "sign", "--store", "ssh-ng://builder1", "-k", k2.secretKeyFile.path, "--all"])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(all.stderr == "added \(fixture.items.count + 1) signatures\n")
        let v2 = try env.nix(["store", "verify", "--store", env.localStore(1), "--all", "--sigs-needed", "1",
                              "--trusted-public-keys", k2.publicKey], check: false)
        #expect(v2.status == 0, "\(v2.stderr)")
        #expect(try sigs(ca).count == 1)
        let again = try env.bridge(["key", "sign", "--store", "ssh-ng://builder1", "-k", k2.secretKeyFile.path, "--all"])
        #expect(again.stderr == "added 0 signatures\n")
    }

    /// AddSignatures on an invalid path would crash a Nix 2.8 daemon: we refuse first,
    /// with Nix's message, and sign nothing.
    @Test func signInvalidPath() throws {
        try makeStore(signedWith: nil)
        let k = try key("nb-sign-bad")
        let missing = "/nix/store/00000000000000000000000000000000-not-there"
        let out = try env.bridge(["key", "sign", "--store", "ssh-ng://builder1", "-k", k.secretKeyFile.path, root, missing])
        #expect(out.status == 1)
        #expect(out.stderr == "error: path '\(missing)' is not valid\n")
        #expect(try sigs(root).isEmpty)
        let usage = try env.bridge(["key", "sign", "-k", k.secretKeyFile.path, "--all"])
        #expect(usage.status == 1)
        #expect(usage.stderr.contains("'--all' and '--recursive' need '--store'"), "\(usage.stderr)")
    }
}
