import Foundation
import NixCore
import TestSupport
import Testing

/// Nix 2.26 (protocol 1.38) in both roles, from the Debian 13 root scripts/test makes: builders
/// whose sshd and `nix-daemon --stdio` are 2.26's, a fleet mixing a 2.8 and a 2.26 builder, and
/// the 2.26 client using nix-bridge over ssh-ng and HTTP. Skipped only where no such root could
/// be made (the Debian mirror unreachable, as scripts/test says); under CI otherwise it fails.
@Suite("Nix 2.26 beside 2.8", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && CLI.isBuilt, "needs nix (nix-bin), sshd, root and a built nix-bridge"),
       .enabled(if: NixVersions.nix226Root != nil || NixVersions.nix226Required,
                Comment(rawValue: NixVersions.nix226Unavailable ?? "")))
struct Nix226Tests {
    /// A fleet that builds (BuildCLITests' set-up), with `roots` choosing which builders run Nix 2.26.
    final class Builders: @unchecked Sendable {
        let setup: BuildCLITests.Setup
        var f: Fleet { setup.f }
        var environment: [String: String] { setup.environment }

        init(roots: [String?], label: String) throws {
            setup = try BuildCLITests.Setup(features: [[], []], roots: roots, label: label, clientFeatures: [])
        }

        /// `nix-bridge ARGS` with the fleet's machines and keys, and a narinfo cache of its own.
        func bridge(_ args: [String], cache: String = UUID().uuidString) throws -> TestSupport.Output {
            let binary = try #require(CLI.binary)
            return try TestSupport.run([binary] + args + [
                "--builders", "@" + f.machinesFile, "--option", "trusted-public-keys", f.trustedPublicKeys,
            ] + (["ping", "path-info"].contains(args.first ?? "") ? [] : ["--narinfo-cache", f.work.appendingPathComponent("\(cache).sqlite").path]),
                environment: environment, check: false)
        }

        func freshStore(_ label: String) -> String {
            "local?root=" + f.work.appendingPathComponent("fresh-\(label)").path
        }

        func sigs(_ path: String, store: String) throws -> String {
            try TestSupport.nix(["path-info", "--sigs", "--store", store, path]).text
        }
    }

    @Test("builders on Nix 2.26: ping, build -j0 of a new derivation, path-info, lookup, substitute")
    func builders226() throws {
        let root = try #require(NixVersions.nix226Root, Comment(rawValue: NixVersions.nix226Unavailable ?? ""))
        let s = try Builders(roots: [root, root], label: "nb-226-builders")
        defer { s.f.stop() }

        let ping = try s.bridge(["ping"])
        #expect(ping.status == 0, "\(ping.text)\(ping.stderr)")
        #expect(ping.text.components(separatedBy: "Version: 2.26.3").count == 3, "\(ping.text)")
        #expect(ping.text.components(separatedBy: "Protocol: 1.38").count == 3, "\(ping.text)")

        let tag = UUID().uuidString.prefix(8).lowercased()
        let drv = try s.f.instantiate(s.f.expression(name: "on-226-\(tag)", script:
            // Nix's sandbox names the host "localhost": proof that 2.26 built sandboxed (without the
            // root bound onto itself it would silently build unsandboxed).
            "read h < /proc/sys/kernel/hostname; test \"$h\" = localhost || { echo not sandboxed: $h >&2; exit 1; }; echo built by 2.26 > $out"))
        let built = try s.bridge(["build", "-j0", "--store", s.f.clientStoreURI, drv])
        #expect(built.status == 0, "\(built.stderr)")
        let out = built.trimmed
        #expect(out.hasSuffix("-on-226-\(tag)"))
        #expect(s.f.buildCount(1) + s.f.buildCount(2) == 1)
        let builder = s.f.buildCount(1) == 1 ? 1 : 2
        try TestSupport.run(["nix-store", "--store", s.f.clientStoreURI, "--verify-path", out])
        #expect(try s.sigs(out, store: s.f.clientStoreURI).contains("builder\(builder)-1:"))

        let info = try s.bridge(["path-info", "--store", "ssh-ng://builder\(builder)", "--sigs", out])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.text.hasPrefix(out) && info.text.contains("builder\(builder)-1:"), "\(info.text)")

        let lookup = try s.bridge(["lookup", "--json", out])
        #expect(lookup.status == 0, "\(lookup.stderr)")
        #expect(lookup.text.contains("ssh-ng://builder\(builder)") && lookup.text.contains("builder\(builder)-1"), "\(lookup.text)")

        let fresh = s.freshStore("subst")
        let subst = try s.bridge(["substitute", "--store", fresh, out])
        #expect(subst.status == 0, "\(subst.stderr)")
        try TestSupport.run(["nix-store", "--store", fresh, "--verify", "--check-contents"])
        #expect(try s.sigs(out, store: fresh).contains("builder\(builder)-1:"))
        // Nothing was built again.
        #expect(s.f.buildCount(1) + s.f.buildCount(2) == 1)
    }

    @Test("a 2.8 and a 2.26 builder: lookup finds each one's paths; with the 2.8 one gone, substitution fails over")
    func mixedFleet() throws {
        let root = try #require(NixVersions.nix226Root, Comment(rawValue: NixVersions.nix226Unavailable ?? ""))
        let s = try Builders(roots: [nil, root], label: "nb-226-mixed")
        defer { s.f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let only1 = try s.f.buildOnBuilder(1, expression: s.f.expression(name: "only1-\(tag)", script: "echo 1 > $out"))
        let only2 = try s.f.buildOnBuilder(2, expression: s.f.expression(name: "only2-\(tag)", script: "echo 2 > $out"))
        let shared = s.f.expression(name: "both-\(tag)", script: "echo both > $out")
        let both = try s.f.buildOnBuilder(1, expression: shared)
        #expect(try s.f.buildOnBuilder(2, expression: shared) == both)

        let lookup = try s.bridge(["lookup", only1, only2, both])
        #expect(lookup.status == 0, "\(lookup.stderr)")
        // Each path's line, then one indented line per builder holding it.
        #expect(lookup.text.contains("\(only1)\n  ssh-ng://builder1: signed by 'builder1-1', trusted\n"), "\(lookup.text)")
        #expect(lookup.text.contains("\(only2)\n  ssh-ng://builder2: signed by 'builder2-1', trusted\n"), "\(lookup.text)")
        #expect(lookup.text.contains("\(both)\n  ssh-ng://builder1: signed by 'builder1-1', trusted\n  ssh-ng://builder2:"),
                "\(lookup.text)")

        s.f.stop(builder: 1)
        let fresh = s.freshStore("failover")
        let subst = try s.bridge(["substitute", "--store", fresh, both])
        #expect(subst.status == 0, "\(subst.stderr)")
        #expect(subst.stderr.contains("copying path '\(both)' from 'ssh-ng://builder2'"), "\(subst.stderr)")
        try TestSupport.run(["nix-store", "--store", fresh, "--verify", "--check-contents"])
        #expect(try s.sigs(both, store: fresh).contains("builder2-1:"))
    }

    /// Nix 2.26 as the client of nix-bridge (serving a fleet of 2.8 builders): ssh-ng through a
    /// real sshd with `remote-program`, as substituter, and the HTTP binary cache.
    @Test("Nix 2.26 as client: nix store info, nix copy --from ssh-ng and http, nix-store -r with the bridge as substituter")
    func client226() throws {
        let root = try #require(NixVersions.nix226Root, Comment(rawValue: NixVersions.nix226Unavailable ?? ""))
        let f = try StdioScenario()
        let work = f.env.work
        let conf = work.appendingPathComponent("nix226conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        let keys = "\(f.key1.publicKey) \(f.key2.publicKey)"
        try "substituters =\ntrusted-public-keys = \(keys)\nexperimental-features = nix-command\n"
            .write(to: conf.appendingPathComponent("nix.conf"), atomically: true, encoding: .utf8)
        let environment = ["NIX_SSHOPTS": f.env.nixSSHOpts, "NIX_CONF_DIR": conf.path,
                           "NIX_USER_CONF_FILES": conf.appendingPathComponent("nix.conf").path,
                           "HOME": work.appendingPathComponent("home226").path]
        let binds = [f.env.directory.path, work.path]
        func nix226(_ args: [String]) throws -> TestSupport.Output {
            try NixVersions.run(in: root, binds: binds, args, environment: environment, check: false)
        }
        let version = try nix226(["nix", "--version"])
        #expect(version.trimmed == "nix (Nix) 2.26.3", "\(version.text)\(version.stderr)")
        let uri = "ssh-ng://builder1?remote-program=\(f.wrapper)"

        let info = try nix226(["nix", "store", "info", "--store", uri])
        #expect(info.status == 0, "\(info.stderr)")
        // 2.26 prints the store's facts as notices (stderr).
        #expect((info.text + info.stderr).contains("Store URL: ssh-ng://"), "\(info.text)\(info.stderr)")

        let dest = f.scratchStore("226-copy")
        let copy = try nix226(["nix", "copy", "--from", uri, "--to", dest, f.root])
        #expect(copy.status == 0, "\(copy.stderr)")
        let got = try nix226(["nix", "path-info", "--recursive", "--store", dest, f.root])
        #expect(got.text.split(separator: "\n").count == 6, "\(got.text)\(got.stderr)")
        let verify = try nix226(["nix", "store", "verify", "--store", dest, "--recursive",
                                 "--trusted-public-keys", f.key2.publicKey, f.root])
        #expect(verify.status == 0, "\(verify.stderr)")

        let dest2 = f.scratchStore("226-realise")
        let realise = try nix226(["nix-store", "--store", dest2, "-r", f.root, "--option", "substituters", uri])
        #expect(realise.status == 0, "\(realise.stderr)")
        #expect(realise.text == f.root + "\n")

        // The HTTP binary cache, served by nix-bridge on the host, read by 2.26 in its root.
        let binary = try #require(CLI.binary)
        let log = work.appendingPathComponent("serve226.log").path
        let serve = try SpawnedProcess([binary, "serve", "--http", "127.0.0.1:0",
                                        "--builders", "ssh-ng://builder1 x86_64-linux ; ssh-ng://builder2 x86_64-linux",
                                        "--option", "trusted-public-keys", keys,
                                        "--narinfo-cache", work.appendingPathComponent("serve226.sqlite").path],
                                       logFile: log, environment: f.env.environment)
        defer { serve.stop() }
        var url: String?
        let deadline = Date().addingTimeInterval(60)
        while url == nil && Date() < deadline && serve.isRunning {
            url = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
                .first { $0.hasPrefix("http://") }.map(String.init)
            if url == nil { usleep(50_000) }
        }
        let cache = try #require(url, "serve --http did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        let dest3 = f.scratchStore("226-http")
        let http = try nix226(["nix", "copy", "--from", cache, "--to", dest3, f.root])
        #expect(http.status == 0, "\(http.stderr)")
        let viaHTTP = try nix226(["nix", "path-info", "--recursive", "--sigs", "--store", dest3, f.root])
        #expect(viaHTTP.text.split(separator: "\n").count == 6 && viaHTTP.text.contains("builder2-1:"), "\(viaHTTP.text)")
    }
}
