import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge status` against three real builders: one signing with a trusted key and both
/// its slots held by another process, one signing with a key nobody trusts, one that signs
/// nothing and then goes down.
@Suite("nix-bridge status", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI, .hostTools),
       .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"),
       .timeLimit(.minutes(2)))
final class StatusCLITests {
    let env: Fleet
    let key1, stranger: SigningKey
    let stateDir: String

    init() throws {
        env = try Fleet(count: 3, label: "nb-cli-status")
        key1 = try SigningKey.generate(name: "builder1-1", in: env.work)
        stranger = try SigningKey.generate(name: "stranger-1", in: env.work)
        let untrustedKey = stranger
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot),
                                    fixture: try StoreFixture.make(count: 5, seed: 161, namePrefix: "st1"), signWith: key1)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(2).storeRoot),
                                    fixture: try StoreFixture.make(count: 4, seed: 162, namePrefix: "st2"), signWith: untrustedKey)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(3).storeRoot),
                                    fixture: try StoreFixture.make(count: 3, seed: 163, namePrefix: "st3"), signWith: nil)
        // Where every command run in the fleet's environment keeps slots, failures and activity.
        stateDir = try #require(env.environment["XDG_STATE_HOME"]) + "/nix-bridge/current-load"
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
    }

    var args: [String] {
        ["--builders", "ssh-ng://builder1 x86_64-linux - 2 1 benchmark ; ssh-ng://builder2 x86_64-linux - 1 1 big-parallel big-parallel ; ssh-ng://builder3 x86_64-linux - 1",
         "--option", "trusted-public-keys", key1.publicKey,
         "--narinfo-cache", env.work.appendingPathComponent("narinfo.sqlite").path]
    }

    var statusArgs: [String] { args + ["--state-dir", stateDir] }

    /// Holds slot `n` of `uri` as a build would (flock on Nix's slot lock file) until stopped.
    func holdSlot(_ uri: String, _ n: Int) throws -> SpawnedProcess {
        let file = stateDir + "/" + String(uri.map { $0 == "/" ? "_" : $0 }) + "-\(n)"
        let ready = file + ".held"
        // One process (the shell becomes sleep, keeping the locked descriptor): stopping it frees the slot.
        let p = try SpawnedProcess(["/bin/sh", "-c", "exec 9>'\(file)' && flock 9 && touch '\(ready)' && exec sleep 60"])
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: ready), Date() < deadline { usleep(20_000) }
        return p
    }

    @Test func tableAndJSONShowEachMachinesState() throws {
        let held = try [holdSlot("ssh-ng://builder1", 0), holdSlot("ssh-ng://builder1", 1)]
        defer { for p in held { p.stop() } }
        // A lookup first, so that the cache has rows: found on builder1, not on the others;
        // the same again is answered from the cache for all three.
        let path = try #require(try listPaths(1).first)
        for _ in 0..<2 {
            let found = try env.bridge(["lookup"] + args + [path])
            #expect(found.status == 0, "\(found.stderr)")
        }

        let text = try env.bridge(["status"] + statusArgs)
        #expect(text.status == 0, "\(text.stderr)")
        let lines = text.text.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("MACHINE") == true, "\(text.text)")
        let b1 = try #require(lines.first { $0.hasPrefix("ssh-ng://builder1 ") }, "\(text.text)")
        #expect(b1.contains(" up ") && b1.contains(" 2.8.0 ") && b1.contains(" 2/2 ") && b1.contains("builder1-1 (trusted)"), "\(b1)")
        #expect(lines[0].contains("  LAST 24 H  ") && b1.contains("  0 builds, 0 NARs  "), "\(text.text)")
        let b2 = try #require(lines.first { $0.hasPrefix("ssh-ng://builder2 ") })
        #expect(b2.contains(" 0/1 ") && b2.contains("big-parallel  big-parallel") && b2.contains("stranger-1 (NOT trusted)"), "\(b2)")
        let b3 = try #require(lines.first { $0.hasPrefix("ssh-ng://builder3 ") })
        #expect(b3.contains(" up ") && b3.hasSuffix("none"), "\(b3)")
        #expect(text.text.contains("ssh-ng://builder3: 3 of its 3 most recent paths are unsigned"), "\(text.text)")
        #expect(text.text.contains("3 rows (1 found, 2 not found, 0 expired), "), "\(text.text)")
        #expect(text.text.contains("; hit rate 50% (3 of 6 path lookups in the last 24 h answered without asking the builder)"), "\(text.text)")

        // A substitution from builder1 (its slots are full: substituting takes none).
        let dest = env.newLocalStore("status-dest")
        let fetched = try env.bridge(["substitute"] + args + ["--store", dest, path])
        #expect(fetched.status == 0, "\(fetched.stderr)")
        // Its closure, as the real Nix reports it.
        let closure = try #require(try JSONSerialization.jsonObject(
            with: try env.nix(["path-info", "--json", "-r", "--store", env.localStore(1), path]).stdout) as? [[String: Any]])
        let narSizes = closure.compactMap { $0["narSize"] as? Int }

        env.stop(builder: 3)
        // What another command remembered when builder3 timed out 30 s ago (FailedBuilders' file).
        let failedAt = Int(Date().timeIntervalSince1970) - 30
        let failedDir = URL(fileURLWithPath: (stateDir as NSString).deletingLastPathComponent + "/failed-builders")
        try FileManager.default.createDirectory(at: failedDir, withIntermediateDirectories: true)
        try Data("""
            store: ssh-ng://builder3
            phase: worker handshake
            failed-at: \(failedAt)
            retry-at: \(failedAt + 90)
            message: builder 'ssh-ng://builder3': timed out after 15 s during worker handshake

            """.utf8).write(to: failedDir.appendingPathComponent("ssh-ng:__builder3"))
        let json = try env.bridge(["status", "--json"] + statusArgs)
        #expect(json.status == 0, "\(json.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        let machines = try #require(o["machines"] as? [[String: Any]])
        #expect(machines.map { $0["storeUri"] as? String } == ["ssh-ng://builder1", "ssh-ng://builder2", "ssh-ng://builder3"])
        #expect(machines[0]["slotsInUse"] as? Int == 2 && machines[0]["maxJobs"] as? Int == 2)
        #expect(machines[0]["trusted"] as? Bool == true && machines[0]["version"] as? String == "2.8.0")
        let keys1 = try #require(machines[0]["signingKeys"] as? [[String: Any]])
        #expect(keys1.count == 1 && keys1[0]["name"] as? String == "builder1-1" && keys1[0]["trusted"] as? Bool == true)
        let keys2 = try #require(machines[1]["signingKeys"] as? [[String: Any]])
        #expect(keys2.count == 1 && keys2[0]["name"] as? String == "stranger-1" && keys2[0]["trusted"] as? Bool == false)
        #expect(machines[1]["mandatoryFeatures"] as? [String] == ["big-parallel"])
        #expect(machines[2]["reachable"] as? Bool == false)
        #expect((machines[2]["error"] as? String)?.isEmpty == false, "\(machines[2])")
        #expect((machines[2]["recentPaths"]) == nil)
        let earlier = try #require(machines[2]["earlierFailure"] as? [String: Any], "\(machines[2])")
        #expect(earlier["phase"] as? String == "worker handshake")
        let since = try #require(machines[2]["downSince"] as? String)
        #expect(ISO8601DateFormatter().date(from: since).map { Int($0.timeIntervalSince1970) } == failedAt)
        let cache = try #require(o["cache"] as? [String: Any])
        #expect(cache["rows"] as? Int == 3 && cache["positive"] as? Int == 1, "\(cache)")
        // Two lookups (3 misses, then 3 hits) and the substitution's (3 more hits for the path,
        // then its references, new to the cache).
        let hits = try #require(cache["hits"] as? Int), misses = try #require(cache["misses"] as? Int)
        #expect(hits >= 6 && misses == 3 + 3 * (closure.count - 1), "\(cache)")
        #expect(cache["hitRate"] as? Double == Double(hits) / Double(hits + misses), "\(cache)")
        let activity = try #require(machines[0]["activity"] as? [String: Any])
        #expect(activity["substitutions"] as? Int == closure.count && activity["narBytes"] as? Int == narSizes.reduce(0, +)
                && activity["builds"] as? Int == 0, "\(activity) \(closure)")
        #expect((activity["cacheHits"] as? Int ?? 0) >= 2 && activity["cacheMisses"] as? Int == closure.count, "\(activity)")
        #expect((machines[1]["activity"] as? [String: Any])?["substitutions"] as? Int == 0)

        let down = try env.bridge(["status"] + statusArgs)
        let b1again = try #require(down.text.split(separator: "\n").first { $0.hasPrefix("ssh-ng://builder1 ") })
        #expect(b1again.contains("  0 builds, \(closure.count) NAR\(closure.count == 1 ? "" : "s") ("), "\(b1again)")
        let b3down = try #require(down.text.split(separator: "\n").first { $0.hasPrefix("ssh-ng://builder3 ") })
        #expect(b3down.contains(" down since "), "\(down.text)")
        #expect(down.text.contains("\nssh-ng://builder3: "), "the reason is printed under the table: \(down.text)")
    }

    @Test func watchRedrawsInPlaceOnATerminal() throws {
        let command = ([try #require(CLI.binary), "status", "--watch", "--interval", "0.2"] + statusArgs)
            .map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        // `script` gives it a terminal; `timeout` ends the watch.
        let out = try TestSupport.run(["timeout", "4", "script", "-qefc", command, "/dev/null"],
                                      environment: env.environment, check: false)
        #expect(out.text.components(separatedBy: "\u{1b}[H\u{1b}[2J").count >= 3, "redrawn at least twice: \(out.text)")
        #expect(out.text.contains("ssh-ng://builder2"))
    }

    @Test func checkSaysWhichStepFailsAndTheFix() throws {
        let pins = (1...3).map { env.builder($0).hostKeyBase64 }
        let builders = "ssh-ng://builder1 x86_64-linux - 2 1 - - \(pins[0]) ; ssh-ng://builder2 x86_64-linux - 1 1 - - \(pins[1]) ; ssh-ng://builder3 x86_64-linux"
        let common = ["--option", "trusted-public-keys", key1.publicKey,
                      "--option", "substituters", "ssh-ng://builder1 ssh://builder2?remote-store=x"]
        let out = try env.bridge(["check", "--builders", builders] + common)
        #expect(out.status == 1, "\(out.text)\(out.stderr)")
        let sections = out.text.components(separatedBy: "\nssh-ng://")
        #expect(sections.count == 3, "\(out.text)")
        let (b1, b2, b3) = (sections[0], sections[1], sections[2])
        #expect(b1.hasPrefix("ssh-ng://builder1\n") && !b1.contains("FAIL"), "\(b1)")
        for step in ["host key pinned", "local substituters line", "ssh login", "nix-daemon on the PATH of a non-interactive shell",
                     "trusted user", "a signing key in secret-key-files", "recent paths signed", "its key in the local trusted-public-keys"] {
            #expect(b1.contains("  PASS  \(step): "), "\(step): \(b1)")
        }
        #expect(b2.contains("  FAIL  its key in the local trusted-public-keys: 'stranger-1' not in trusted-public-keys\n        fix: add the builder's public key"), "\(b2)")
        #expect(b2.contains("  PASS  local substituters line"), "ssh:// names the same store: \(b2)")
        #expect(b3.contains("  PASS  host key pinned: in known_hosts as 'builder3' (") && b3.contains("/known_hosts:"), "not in the machines line, so known_hosts pins it: \(b3)")
        #expect(b3.contains("  FAIL  local substituters line: 'substituters' does not name 'ssh-ng://builder3'"), "\(b3)")
        #expect(b3.contains("  FAIL  a signing key in secret-key-files: none of its 3 recent input-addressed paths is signed\n        fix: generate a key pair with 'nix-store --generate-binary-cache-key"), "\(b3)")
        #expect(b3.contains("  FAIL  recent paths signed: 3 of its 3 most recent paths are unsigned\n        fix: sign what it built before the key was set: 'nix store sign --key-file"), "\(b3)")
        #expect(out.text.hasSuffix("\n4 steps failed\n"), "\(out.text)")

        // Neither in the machines line nor in known_hosts (nothing listens on port 9 either).
        let unknown = try env.bridge(["check", "--builders", "ssh-ng://root@127.0.0.1:9 x86_64-linux"] + common)
        #expect(unknown.status == 1)
        #expect(unknown.text.contains("  FAIL  host key pinned: no host key in the machines file (8th field), nor in known_hosts as '[127.0.0.1]:9'\n        fix: put the builder's host public key"), "\(unknown.text)")

        env.stop(builder: 3)
        let down = try env.bridge(["check", "--builders", builders] + common)
        #expect(down.status == 1)
        #expect(down.text.contains("  FAIL  ssh login: "), "\(down.text)")
        #expect(down.text.contains("fix: nothing listens on that port: is sshd running on the builder?"), "\(down.text)")

        // builder1 with both its slots held by builds: checking takes no slot and is not held up.
        let held = try [holdSlot("ssh-ng://builder1", 0), holdSlot("ssh-ng://builder1", 1)]
        defer { for p in held { p.stop() } }
        let one = try env.bridge(["check", "--state-dir", stateDir, "--builders", "ssh-ng://builder1 x86_64-linux - 2 1 - - \(pins[0])"] + common)
        #expect(one.status == 0, "\(one.text)")
        #expect(one.text.hasSuffix("all steps passed\n"), "\(one.text)")
    }

    func listPaths(_ n: Int) throws -> [String] {
        try env.nix(["path-info", "--all", "--store", env.localStore(n)]).text.split(separator: "\n").map(String.init)
    }
}
