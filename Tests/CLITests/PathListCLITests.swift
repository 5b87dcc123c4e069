import Foundation
import NixCore
import Testing
import TestSupport

/// Paths in any number: on the command line (however options are interleaved) and with
/// `--stdin`, as Nix reads them, checked against the real `nix` on real stores.
@Suite("path lists: positional and --stdin", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI),
       .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"),
       .timeLimit(.minutes(3)))
final class PathListCLITests {
    let env: Fleet
    let key: SigningKey
    /// 40 paths with references on builder 1, signed with `key`.
    let fixture: StoreFixture
    let paths: [String]

    init() throws {
        env = try Fleet(count: 1, label: "nb-cli-pathlist")
        key = try SigningKey.generate(name: "builder1-1", in: env.work)
        fixture = try StoreFixture.make(count: 40, seed: 16, namePrefix: "list")
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: fixture, signWith: key)
        paths = fixture.printedPaths
    }

    var fleetArgs: [String] {
        ["--builders", "ssh-ng://builder1 x86_64-linux", "--option", "trusted-public-keys", key.publicKey,
         "--narinfo-cache", env.work.appendingPathComponent("narinfo.sqlite").path]
    }

    static func lines(_ paths: [String]) -> Data { Data((paths.joined(separator: "\n") + "\n").utf8) }

    @Test func pathInfoStdinIsThePositionalList() throws {
        let nix = try env.nix(["path-info", "--sigs", "--store", "ssh-ng://builder1"] + paths)
        let stdin = try env.bridge(["path-info", "--sigs", "--store", "ssh-ng://builder1", "--stdin"], input: Self.lines(paths))
        #expect(stdin.status == 0, "\(stdin.stderr)")
        #expect(stdin.text == nix.text)
        // Any white space separates, as Nix's `std::cin >> word`; positional paths are added.
        let mixed = Data((paths.dropFirst().joined(separator: " \t") + "\r\n\n").utf8)
        let both = try env.bridge(["path-info", "--sigs", "--stdin", "--store", "ssh-ng://builder1", paths[0]], input: mixed)
        #expect(both.status == 0, "\(both.stderr)")
        #expect(both.text == nix.text)
    }

    @Test func longPositionalListWithOptionsBetweenThePaths() throws {
        // 16,000 arguments (Nix treats the repeats as one path each), options among them and
        // `--` before the last ones; the same lines as Nix's for the same command line.
        var args = ["path-info"]
        let repeated = Array(repeating: paths, count: 400).flatMap { $0 }
        args += Array(repeated[0..<5000]) + ["--sigs"] + Array(repeated[5000..<10000])
        args += ["--store", "ssh-ng://builder1"] + Array(repeated[10000..<15000]) + ["--"] + Array(repeated[15000...])
        let ours = try env.bridge(args)
        #expect(ours.status == 0, "\(ours.stderr)")
        let nix = try env.nix(["path-info", "--sigs", "--store", "ssh-ng://builder1"] + paths)
        #expect(ours.text == nix.text)
        #expect(ours.text.split(separator: "\n").count == paths.count)
    }

    @Test func usageErrorsNameTheRealArguments() throws {
        let many = Array(repeating: paths[0], count: 3000)
        let unknown = try env.bridge(["path-info", "--store", "ssh-ng://builder1"] + many + ["--bogus"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "error: Unknown option '--bogus'. Did you mean '--sigs'?\nTry 'nix-bridge --help' for more information.\n",
                "\(unknown.stderr)")
        let none = try env.bridge(["path-info", "--store", "ssh-ng://builder1", "--stdin"], input: Data())
        #expect(none.status == 1)
        #expect(none.stderr.hasPrefix("error: Missing expected argument '<paths> ...' (or --stdin)\n"), "\(none.stderr)")
        let notAPath = try env.bridge(["path-info", "--store", "ssh-ng://builder1"] + many + ["/tmp/x"])
        #expect(notAPath.status == 1)
        #expect(notAPath.stderr.contains("'/tmp/x'"), "\(notAPath.stderr)")
        // Commands without a path list are parsed as given.
        let generate = try env.bridge(["key", "generate", "only-a-name"])
        #expect(generate.status == 1)
        #expect(generate.stderr.hasPrefix("error: Missing expected argument '<secret-file>'"), "\(generate.stderr)")
    }

    @Test func lookupAndSubstituteReadStdin() throws {
        let lookup = try env.bridge(["lookup", "--stdin"] + fleetArgs, input: Self.lines(paths))
        #expect(lookup.status == 0, "\(lookup.stderr)")
        for p in paths { #expect(lookup.text.contains(p + "\n  ssh-ng://builder1: signed by 'builder1-1', trusted")) }
        let dest = try FixtureStore.scratchDirectory("nb-cli-stdin-dest")
        defer { try? FileManager.default.removeItem(at: dest) }
        let subst = try env.bridge(["substitute", "--stdin", "--store", "local?root=\(dest.path)"] + fleetArgs,
                                   input: Self.lines(Array(paths.prefix(5))))
        #expect(subst.status == 0, "\(subst.stderr)")
        #expect(subst.text == paths.prefix(5).map { $0 + "\n" }.joined())
        let there = try env.nix(["path-info", "--store", "local?root=\(dest.path)"] + Array(paths.prefix(5)), check: false)
        #expect(there.status == 0, "\(there.stderr)")
    }

    @Test func keySignAndBuildReadStdin() throws {
        let k = try SigningKey.generate(name: "stdin-sign-1", in: env.work)
        let signed = try env.bridge(["key", "sign", "--store", "ssh-ng://builder1", "-k", k.secretKeyFile.path, "--stdin"],
                                    input: Self.lines(Array(paths.prefix(3))))
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(signed.stderr == "added 3 signatures\n")
        let verify = try env.nix(["store", "verify", "--store", env.localStore(1), "--sigs-needed", "1",
                                  "--trusted-public-keys", k.publicKey] + Array(paths.prefix(3)), check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        // `build` of store paths the fleet holds: fetched, printed like nix-build.
        let dest = try FixtureStore.scratchDirectory("nb-cli-stdin-build")
        defer { try? FileManager.default.removeItem(at: dest) }
        let build = try env.bridge(["build", "-j0", "--stdin", "--store", "local?root=\(dest.path)",
                                    "--state-dir", env.work.appendingPathComponent("state").path] + fleetArgs,
                                   input: Self.lines([paths[7], paths[8]]))
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.text == paths[7] + "\n" + paths[8] + "\n")
    }
}
