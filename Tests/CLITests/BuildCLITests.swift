import Foundation
import Testing
import TestSupport

/// `nix-bridge build` run as a user runs it, against a real fleet that builds: builder1 with
/// no extra feature, builder2 with `big-parallel`. The client store is a chroot store whose
/// own nix.conf lets it build sandboxed (for builds no machine can take).
@Suite(.serialized, .tags(.realNix, .realSSHD, .builtCLI), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && CLI.isBuilt, "needs nix (nix-bin), sshd, root and a built nix-bridge"))
struct BuildCLITests {
    final class Setup: @unchecked Sendable {
        let f: Fleet
        let environment: [String: String]

        /// - Parameter roots: builders served from another Debian root's Nix (`Fleet.init`).
        init(features: [[String]] = [[], ["big-parallel"]], roots: [String?] = [], label: String = "nb-build-cli",
             clientFeatures: [String] = ["local-only"]) throws {
            f = try Fleet(features: features, label: label, roots: roots)
            let conf = f.work.appendingPathComponent("clientconf")
            try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
            try Fleet.builderConf(storeRoot: f.clientRoot, secretKey: nil, features: clientFeatures)
                .write(to: conf.appendingPathComponent("nix.conf"), atomically: true, encoding: .utf8)
            environment = [
                "NIX_SSHOPTS": f.nixSSHOpts,
                "NIX_CONF_DIR": conf.path,
                "NIX_USER_CONF_FILES": conf.appendingPathComponent("nix.conf").path,
                "XDG_CACHE_HOME": f.work.appendingPathComponent("xdg-cache").path,
                "NIX_BRIDGE_STATE_DIR": f.work.appendingPathComponent("state").path,
            ]
        }

        /// `nix-bridge build TARGETS --store STORE --builders @machines -j J --option ...`.
        func build(_ targets: [String], jobs: Int = 0, store: String? = nil, extra: [String] = []) throws -> TestSupport.Output {
            guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
            let args = ["build"] + targets + ["--store", store ?? f.clientStoreURI, "--builders", "@" + f.machinesFile,
                                              "-j", "\(jobs)"] + extra
                + ["--option", "trusted-public-keys", f.trustedPublicKeys]
            return try TestSupport.run([binary] + args, environment: environment, check: false)
        }

        func file(_ name: String, _ expression: String) throws -> String {
            let path = f.work.appendingPathComponent(name).path
            try expression.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    @Test("a .nix file: misses are built on the right machines, a second run and a fresh store build nothing")
    func buildsThenReuses() throws {
        let s = try Setup()
        defer { s.f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let dep = s.f.expression(name: "dep-\(tag)", script: "echo dep-\(tag) > $out")
        let top = s.f.expression(name: "top-\(tag)", script: "echo building top; read l < ${dep}; echo \"$l top\" > $out",
                                 features: ["big-parallel"])
        let file = try s.file("top.nix", "let dep = \(dep); in \(top)")
        let first = try s.build([file], extra: ["--option", "secret-key-files", s.f.clientSecretKeyFile])
        #expect(first.status == 0, "\(first.stderr)")
        let out = first.trimmed
        #expect(out.hasPrefix("/nix/store/") && out.hasSuffix("-top-\(tag)"))
        #expect(first.stderr.contains("-top-\(tag).drv' on 'ssh-ng://builder2'..."))
        #expect(first.stderr.contains("building top"))
        try TestSupport.run(["nix-store", "--store", s.f.clientStoreURI, "--verify-path", out])
        let sigs = try TestSupport.nix(["path-info", "--sigs", "--store", s.f.clientStoreURI, out]).text
        #expect(sigs.contains("builder2-1:") && sigs.contains("client-1:"))
        let counts = (s.f.buildCount(1), s.f.buildCount(2))
        #expect(counts.0 + counts.1 == 2)

        let again = try s.build([file], extra: ["--json"])
        #expect(again.status == 0)
        #expect(!again.stderr.contains("building '"))
        let json = try JSONSerialization.jsonObject(with: again.stdout) as? [[String: Any]]
        #expect((json?.first?["outputs"] as? [String: String])?["out"] == out)
        #expect((json?.first?["drvPath"] as? String)?.hasSuffix("-top-\(tag).drv") == true)

        let fresh = s.f.work.appendingPathComponent("fresh").path
        let third = try s.build([file], store: "local?root=\(fresh)")
        #expect(third.status == 0 && third.trimmed == out, "\(third.stderr)")
        #expect(third.stderr.contains("copying path '\(out)' from 'ssh-ng://builder2'..."))
        #expect(!third.stderr.contains("building '"))
        #expect((s.f.buildCount(1), s.f.buildCount(2)) == counts)
        try TestSupport.run(["nix-store", "--store", "local?root=\(fresh)", "--verify-path", out])

        // status: the builds each machine ran, and the output the fresh store was given from builder2.
        let status = try TestSupport.run([try #require(CLI.binary), "status", "--json", "--builders", "@" + s.f.machinesFile,
                                          "--option", "trusted-public-keys", s.f.trustedPublicKeys],
                                         environment: s.environment, check: false)
        #expect(status.status == 0, "\(status.stderr)")
        let machines = try #require((try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any])?["machines"] as? [[String: Any]])
        let activity = machines.map { $0["activity"] as? [String: Any] ?? [:] }
        #expect(activity.map { $0["builds"] as? Int } == [counts.0, counts.1], "\(activity)")
        #expect((activity[1]["substitutions"] as? Int ?? 0) >= 1, "\(activity)")
    }

    @Test("failing builds: exit 100 with Nix's texts, for the builder and for what depends on it")
    func failures() throws {
        let s = try Setup()
        defer { s.f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let bad = s.f.expression(name: "bad-\(tag)", script: "echo about to fail; exit 3")
        let badDrv = try s.f.instantiate(bad)
        let r = try s.build([badDrv])
        #expect(r.status == 100)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("error: build of '\(badDrv)' on 'ssh-ng://builder"))
        #expect(r.stderr.contains("failed: builder for '\(badDrv)' failed with exit code 3;\n       last 1 log lines:\n       > about to fail"))

        let top = s.f.expression(name: "after-\(tag)", script: "read l < ${bad}; echo $l > $out")
        let topDrv = try s.f.instantiate("let bad = \(bad); in \(top)")
        let d = try s.build([topDrv + "^out"])
        #expect(d.status == 100)
        #expect(d.stderr.contains("error: build of '\(badDrv)'"))
        #expect(d.stderr.hasSuffix("error: 1 dependencies of derivation '\(topDrv)' failed to build\n"))
    }

    @Test("no machine can take it: -j 0 fails with Nix's -j0 text (exit 1); with -j 1 the local store builds it")
    func noMachine() throws {
        let s = try Setup()
        defer { s.f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let drv = try s.f.instantiate(s.f.expression(name: "local-\(tag)", script: "echo built here > $out", features: ["local-only"]))
        let none = try s.build([drv], jobs: 0)
        #expect(none.status == 1)
        #expect(none.stderr.contains("Failed to find a machine for remote build!"))
        #expect(none.stderr.contains("error: unable to start any build; remote machines may not have all required system features."))
        #expect(s.f.buildCount(1) + s.f.buildCount(2) == 0)

        let local = try s.build([drv], jobs: 1)
        #expect(local.status == 0, "\(local.stderr)")
        #expect(local.stderr.contains("building '\(drv)'...\n"))
        let out = local.trimmed
        try TestSupport.run(["nix-store", "--store", s.f.clientStoreURI, "--verify-path", out])
        #expect(try String(contentsOfFile: s.f.clientRoot + out, encoding: .utf8) == "built here\n")
        #expect(s.f.buildCount(1) + s.f.buildCount(2) == 0)
    }

    @Test("preferLocalBuild: the local store builds it when it can (-j 1); with -j 0 a machine does")
    func preferLocalBuild() throws {
        let s = try Setup()
        defer { s.f.stop() }
        for jobs in [1, 0] {
            let tag = UUID().uuidString.prefix(8).lowercased()
            let expr = s.f.expression(name: "pref-\(tag)", script: "echo pref > $out")
                .replacingOccurrences(of: "derivation { ", with: "derivation { preferLocalBuild = true; ")
            let drv = try s.f.instantiate(expr)
            let before = s.f.buildCount(1) + s.f.buildCount(2)
            let r = try s.build([drv], jobs: jobs)
            #expect(r.status == 0, "\(r.stderr)")
            if jobs == 1 {
                #expect(r.stderr.contains("building '\(drv)'...\n"))
                #expect(s.f.buildCount(1) + s.f.buildCount(2) == before)
            } else {
                #expect(r.stderr.contains("building '\(drv)' on 'ssh-ng://builder1'..."))
                #expect(s.f.buildCount(1) + s.f.buildCount(2) == before + 1)
            }
            try TestSupport.run(["nix-store", "--store", s.f.clientStoreURI, "--verify-path", r.trimmed])
        }
    }
}
