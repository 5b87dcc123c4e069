import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge lookup`, `substitute` and `cache` as a user runs them, against two real
/// builders with their own keys, checked with the real nix CLI.
@Suite("nix-bridge lookup / substitute / cache", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class LookupSubstituteCLITests {
    let env: Fleet
    let key1, key2, stranger: SigningKey
    /// A 6-path closure on both builders, each signing with its own key.
    let closure: StoreFixture
    /// Paths on builder 2 only, signed by a key nobody trusts.
    let untrusted: StoreFixture
    let root: String
    let cacheFile: String
    let dest: URL

    init() throws {
        env = try Fleet(count: 2, label: "nb-cli-fleet")
        key1 = try SigningKey.generate(name: "builder1-1", in: env.work)
        key2 = try SigningKey.generate(name: "builder2-1", in: env.work)
        stranger = try SigningKey.generate(name: "stranger-1", in: env.work)
        closure = try StoreFixture.closure(size: 6, rootName: "cli-subst-root", seed: 41)
        untrusted = try StoreFixture.make(count: 2, seed: 42, namePrefix: "cli-untrusted")
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: closure, signWith: key1)
        let root2 = URL(fileURLWithPath: env.builder(2).storeRoot)
        let b2 = try FixtureStore.create(at: root2, fixture: closure, signWith: key2)
        var b2stranger = FixtureStore(location: .chroot(root: root2), key: stranger, infos: b2.infos)
        try b2stranger.add(untrusted)
        root = StoreDirectory.default.print(try #require(closure.roots.first))
        cacheFile = env.work.appendingPathComponent("narinfo.sqlite").path
        dest = try FixtureStore.scratchDirectory("nb-cli-subst-dest")
    }

    deinit { try? FileManager.default.removeItem(at: dest) }

    /// The fleet as nix.conf options: both builders (with speed factors) and both keys trusted.
    func fleetArgs(speed1: Int = 1, speed2: Int = 1) -> [String] {
        ["--builders", "ssh-ng://builder1 x86_64-linux - 1 \(speed1) ; ssh-ng://builder2 x86_64-linux - 1 \(speed2)",
         "--option", "trusted-public-keys", "\(key1.publicKey) \(key2.publicKey)",
         "--narinfo-cache", cacheFile]
    }

    var destURI: String { "local?root=\(dest.path)" }

    @Test func lookupPrintsWhereAndWhoSignedAndCachesTheAnswer() throws {
        let first = try env.bridge(["lookup"] + fleetArgs() + [root])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.text.hasPrefix(root + "\n"))
        #expect(first.text.contains("  ssh-ng://builder1: signed by 'builder1-1', trusted\n"), "\(first.text)")
        #expect(first.text.contains("  ssh-ng://builder2: signed by 'builder2-1', trusted\n"), "\(first.text)")
        #expect(!first.text.contains("(cached)"))
        #expect(!first.stderr.contains("\r"), "no progress line in a pipe")
        let second = try env.bridge(["lookup"] + fleetArgs() + [root])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.text.contains("  ssh-ng://builder1: signed by 'builder1-1', trusted (cached)\n"), "\(second.text)")
    }

    @Test func lookupJSONAndExitStatus() throws {
        let missing = StoreDirectory.default.path + "/00000000000000000000000000000000-nowhere"
        let ok = try env.bridge(["lookup", "--json"] + fleetArgs(speed1: 1, speed2: 3) + [root])
        #expect(ok.status == 0, "\(ok.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: ok.stdout) as? [[String: Any]])
        let entry = try #require(list.first)
        #expect(entry["path"] as? String == root)
        #expect(entry["best"] as? String == "ssh-ng://builder2", "the faster machine comes first")
        let locations = try #require(entry["locations"] as? [[String: Any]])
        #expect(locations.map { $0["store"] as? String } == ["ssh-ng://builder2", "ssh-ng://builder1"])
        #expect(locations.allSatisfy { $0["trusted"] as? Bool == true && $0["fromCache"] as? Bool == false })
        let nixInfo = try env.nix(["path-info", "--json", "--store", env.localStore(1), root])
        let nixSize = (try JSONSerialization.jsonObject(with: nixInfo.stdout) as? [[String: Any]])?.first?["narSize"] as? Int
        #expect(locations[0]["narSize"] as? Int == nixSize)

        let bad = try env.bridge(["lookup", "--json"] + fleetArgs() + [missing])
        #expect(bad.status == 1)
        let badList = try #require(try JSONSerialization.jsonObject(with: bad.stdout) as? [[String: Any]])
        #expect((badList.first?["locations"] as? [Any])?.isEmpty == true && badList.first?["best"] == nil)
    }

    @Test func untrustedCopiesAreIgnoredWithNixsWarning() throws {
        let path = untrusted.printedPaths[0]
        let out = try env.bridge(["lookup"] + fleetArgs() + [path])
        #expect(out.status == 1)
        #expect(out.text.contains("  ssh-ng://builder2: not trusted"), "\(out.text)")
        #expect(out.stderr.contains("warning: ignoring substitute for '\(path)' from 'ssh-ng://builder2', as it's not signed by any of the keys in 'trusted-public-keys'"),
                "\(out.stderr)")
        let subst = try env.bridge(["substitute", "--store", destURI] + fleetArgs() + [path])
        #expect(subst.status == 1)
        #expect(subst.stderr.contains("error: no trusted substitute for '\(path)'"), "\(subst.stderr)")
    }

    @Test func substituteFetchesTheClosureWithSignatures() throws {
        let out = try env.bridge(["substitute", "--store", destURI] + fleetArgs() + [root])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.text == root + "\n")
        #expect(out.stderr.contains("these \(closure.items.count) paths will be fetched ("), "\(out.stderr)")
        for p in closure.printedPaths {
            #expect(out.stderr.contains("copying path '\(p)' from 'ssh-ng://builder1'..."), "\(out.stderr)")
        }
        #expect(!out.stderr.contains("\r") && !out.stderr.contains("paths, "), "no progress line in a pipe")
        let info = try env.nix(["path-info", "--json", "--sigs", "-r", "--store", destURI, root])
        let list = try #require(try JSONSerialization.jsonObject(with: info.stdout) as? [[String: Any]])
        #expect(Set(list.compactMap { $0["path"] as? String }) == Set(closure.printedPaths))
        #expect(list.allSatisfy { ($0["signatures"] as? [String] ?? []).contains { $0.hasPrefix("builder1-1:") } })
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        // Again: nothing left to fetch.
        let again = try env.bridge(["substitute", "--json", "--store", destURI] + fleetArgs() + [root])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.text == "[]\n")
    }

    @Test func substituteJSONNamesTheFasterSource() throws {
        let out = try env.bridge(["substitute", "--json", "--store", destURI] + fleetArgs(speed1: 1, speed2: 2) + [root])
        #expect(out.status == 0, "\(out.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]])
        #expect(Set(list.compactMap { $0["path"] as? String }) == Set(closure.printedPaths))
        #expect(list.allSatisfy { $0["from"] as? String == "ssh-ng://builder2" })
        #expect(list.last?["path"] as? String == root, "references first")
        let info = try env.nix(["path-info", "--json", "--store", destURI, root])
        let nixSize = (try JSONSerialization.jsonObject(with: info.stdout) as? [[String: Any]])?.first?["narSize"] as? Int
        #expect(list.last?["narSize"] as? Int == nixSize)
    }

    @Test func progressIsDrawnInPlaceOnATerminal() throws {
        // `script` gives the command a pseudo-terminal (stdout and stderr both go there).
        let command = ([try #require(CLI.binary), "substitute", "--store", destURI] + fleetArgs() + [root])
            .map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let out = try TestSupport.run(["script", "-qefc", command, "/dev/null"], environment: env.environment, check: false)
        #expect(out.status == 0, "\(out.text)")
        #expect(out.text.contains("\r\u{1b}[K[6/6 paths, "), "\(out.text)")
        #expect(out.text.contains("copying path '\(root)' from 'ssh-ng://builder1'..."))
    }

    @Test func cacheStatsAndClearNegative() throws {
        let missing = StoreDirectory.default.path + "/11111111111111111111111111111111-nowhere"
        _ = try env.bridge(["lookup"] + fleetArgs() + [root, missing])
        let stats = try env.bridge(["cache", "stats", "--narinfo-cache", cacheFile])
        #expect(stats.status == 0, "\(stats.stderr)")
        #expect(stats.text.contains("ssh-ng://builder1: 1 positive, 1 negative, 0 expired"), "\(stats.text)")
        #expect(stats.text.contains("ssh-ng://builder2: 1 positive, 1 negative, 0 expired"), "\(stats.text)")
        let clear = try env.bridge(["cache", "clear", "--negative", "--narinfo-cache", cacheFile])
        #expect(clear.status == 0 && clear.text == "cleared negative answers\n", "\(clear.stderr)")
        let after = try env.bridge(["cache", "stats", "--narinfo-cache", cacheFile])
        #expect(after.text.contains("ssh-ng://builder1: 1 positive, 0 negative, 0 expired"), "\(after.text)")
        _ = try env.bridge(["cache", "clear", "--narinfo-cache", cacheFile])
        let empty = try env.bridge(["cache", "stats", "--narinfo-cache", cacheFile])
        #expect(!empty.text.contains("1 positive"), "\(empty.text)")
    }
}
