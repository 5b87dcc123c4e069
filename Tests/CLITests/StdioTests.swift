import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge --stdio` as an ssh-ng store and substituter for the real Nix 2.8 client:
/// paths held only by fleet builders are served when a trusted key signed them, and only then.
@Suite("nix-bridge --stdio with real Nix", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class StdioTests {
    let f: StdioScenario

    init() throws { f = try StdioScenario() }

    @Test func pathInfoOfAPathOnlyABuilderHolds() throws {
        let out = try f.env.nix(["path-info", "--json", "--sigs", "--store", f.localURI(), f.root])
        let info = try #require((try JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]])?.first)
        let direct = try #require(try f.pathInfo(f.root, store: f.env.localStore(2)))
        #expect(info["path"] as? String == f.root)
        #expect(info["narHash"] as? String == direct["narHash"] as? String)
        #expect(info["narSize"] as? Int == direct["narSize"] as? Int)
        #expect(info["references"] as? [String] == direct["references"] as? [String])
        #expect(info["signatures"] as? [String] == direct["signatures"] as? [String])
        // The closure, as the builder lists it.
        let closure = try f.env.nix(["path-info", "--recursive", "--store", f.localURI(), f.root])
        let expected = try f.env.nix(["path-info", "--recursive", "--store", f.env.localStore(2), f.root])
        #expect(closure.text == expected.text)
        #expect(closure.text.split(separator: "\n").count == 6)
        // Paths of the other builder are there too.
        let other = StoreDirectory.default.print(f.onBuilder1.paths[0])
        #expect(try f.env.nix(["path-info", "--store", f.localURI(), other]).text == other + "\n")
        // With remote-store, Nix appends `--store 'auto'` to the command: accepted.
        let withStore = try f.env.nix(["path-info", "--store", f.localURI() + "&remote-store=auto", other], check: false)
        #expect(withStore.status == 0, "\(withStore.stderr)")
        #expect(withStore.text == other + "\n")
    }

    @Test func untrustedAndUnsignedPathsAreNotServed() throws {
        for fixture in [f.untrusted, f.unsigned] {
            let p = StoreDirectory.default.print(fixture.paths[0])
            let out = try f.env.nix(["path-info", "--store", f.localURI(), p], check: false)
            #expect(out.status == 1)
            #expect(out.stderr.contains("error: path '\(p)' is not valid"), "\(out.stderr)")
            let dest = f.scratchStore("untrusted")
            let copy = try f.env.nix(["copy", "--from", f.localURI(), "--to", dest, p], check: false)
            #expect(copy.status == 1)
            #expect(copy.stderr.contains("path '\(p)' is required, but there is no substituter that can build it"),
                    "\(copy.stderr)")
        }
    }

    @Test func copyFromIntoAFreshChrootStore() throws {
        let dest = f.scratchStore("copy")
        let out = try f.env.nix(["copy", "--from", f.localURI(), "--to", dest, "--trusted-public-keys", f.key2.publicKey,
                                 f.root], check: false)
        #expect(out.status == 0, "\(out.stderr)")
        let got = try f.env.nix(["path-info", "--recursive", "--store", dest, f.root])
        let expected = try f.env.nix(["path-info", "--recursive", "--store", f.env.localStore(2), f.root])
        #expect(got.text == expected.text)
        // What arrived is what the builder signed: verify it with the builder's key only.
        let verify = try f.env.nix(["store", "verify", "--store", dest, "--recursive",
                                    "--trusted-public-keys", f.key2.publicKey, f.root], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    @Test func nixStoreRealiseAndNixBuildSubstituteThroughNixBridge() throws {
        let keys = "\(f.key1.publicKey) \(f.key2.publicKey)"
        let dest1 = f.scratchStore("realise")
        let realise = try f.env.nixStore(["--store", dest1, "-r", f.root, "--option", "substituters", f.localURI(),
                                          "--option", "trusted-public-keys", keys])
        #expect(realise.status == 0, "\(realise.stderr)")
        #expect(realise.text == f.root + "\n")
        #expect(try f.pathInfo(f.root, store: dest1) != nil)

        let dest2 = f.scratchStore("build")
        let build = try f.env.nix(["build", "--no-link", "--store", dest2, "--substituters", f.localURI(),
                                   "--trusted-public-keys", keys, f.root], check: false)
        #expect(build.status == 0, "\(build.stderr)")
        let closure = try f.env.nix(["path-info", "--recursive", "--store", dest2, f.root])
        #expect(closure.text.split(separator: "\n").count == 6)
    }

    /// With secret-key-files, a client that trusts only nix-bridge's key can substitute.
    @Test func nixBridgeSignsWhatItServes() throws {
        let dest = f.scratchStore("bridge-key")
        let uri = f.localURI(f.signingWrapper)
        let out = try f.env.nixStore(["--store", dest, "-r", f.root, "--option", "substituters", uri,
                                      "--option", "trusted-public-keys", f.bridgeKey.publicKey])
        #expect(out.status == 0, "\(out.stderr)")
        let info = try #require(try f.pathInfo(f.root, store: dest))
        let sigs = info["signatures"] as? [String] ?? []
        #expect(sigs.contains { $0.hasPrefix("bridge-1:") }, "\(sigs)")
        #expect(sigs.contains { $0.hasPrefix("builder2-1:") }, "the builder's signature is kept: \(sigs)")
        // Without secret-key-files the same client finds nothing it trusts.
        let plain = try f.env.nixStore(["--store", f.scratchStore("no-bridge-key"), "-r", f.root, "--option", "substituters",
                                        f.localURI(), "--option", "trusted-public-keys", f.bridgeKey.publicKey])
        #expect(plain.status != 0)
    }

    @Test func writesAreRefused() throws {
        let src = f.scratchStore("src")
        let file = try f.env.write("to-copy.txt", "refuse me\n")
        let added = try TestSupport.run(["nix-store", "--store", src, "--add", file], environment: f.env.environment).trimmed
        // One builder: Nix asks whether the path is valid before it adds it, and a builder
        // that could not be asked would make that answer an error rather than "no".
        let oneBuilder = try StdioScenario.wrapper(in: f.env.work, name: "bridge-one", conf: """
            builders = ssh-ng://builder1 x86_64-linux
            trusted-public-keys = \(f.key1.publicKey)
            """, sshOpts: f.env.nixSSHOpts)
        let out = try f.env.nix(["copy", "--from", src, "--to", f.localURI(oneBuilder), added], check: false)
        #expect(out.status == 1)
        #expect(out.stderr.contains("error: you are not privileged to add paths"), "\(out.stderr)")
        #expect(out.stderr.contains("nix-bridge serves the fleet's trusted paths read-only"), "\(out.stderr)")
    }

    /// Through a real sshd, as a remote user would reach nix-bridge on another machine.
    @Test func throughSSHD() throws {
        let uri = "ssh-ng://builder1?remote-program=\(f.wrapper)"
        // Held by builder 2 only: builder 1's nix-bridge fetches it from there.
        let out = try f.env.nix(["path-info", "--store", uri, f.root], check: false)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.text == f.root + "\n")
        let dest = f.scratchStore("sshd")
        let copy = try f.env.nix(["copy", "--from", uri, "--to", dest, "--no-check-sigs", f.root], check: false)
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(try f.pathInfo(f.root, store: dest) != nil)
    }

    /// 50 Nix clients at once, each with its own nix-bridge: all answered, all correctly.
    @Test func fiftyConcurrentClients() throws {
        let expected = try f.env.nix(["path-info", "--recursive", "--store", f.env.localStore(2), f.root]).text
        let outputs = try f.env.runConcurrently(Array(repeating: ["nix", "--extra-experimental-features", "nix-command",
                                                                  "path-info", "--recursive", "--store", f.localURI(), f.root],
                                                      count: 50))
        #expect(outputs.count == 50)
        for (i, o) in outputs.enumerated() {
            #expect(o.status == 0, "client \(i): \(o.stderr)")
            #expect(o.text == expected, "client \(i)")
        }
    }
}

extension Fleet {
    /// Real `nix-store ARGS` in the fleet's environment (exit status not checked).
    func nixStore(_ args: [String]) throws -> TestSupport.Output {
        try TestSupport.run(["nix-store"] + args, environment: environment, check: false)
    }
}
