import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge lookup`, `substitute` and `ping` as a user runs them when one of two real
/// builders sits behind a link that went silent (no reset): bounded time, the builder named
/// with what it was doing, builder1's answers kept, a non-zero exit when an answer is missing
/// because of the failure, and the failure remembered so the next command does not wait.
@Suite("nix-bridge with a silent builder", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class SilentBuilderCLITests {
    let env: Fleet
    let proxy: SilentProxy
    let key1, key2: SigningKey
    let both: StoreFixture
    /// Only on builder2 (behind the silent link).
    let onlyOn2: StoreFixture
    let environment: [String: String]
    let dest: URL

    init() throws {
        env = try Fleet(count: 2, label: "nb-cli-fleet")
        key1 = try SigningKey.generate(name: "builder1-1", in: env.work)
        key2 = try SigningKey.generate(name: "builder2-1", in: env.work)
        both = try StoreFixture.make(count: 3, seed: 51, namePrefix: "cli-silent")
        onlyOn2 = try StoreFixture.make(count: 1, seed: 52, namePrefix: "cli-silent-only2")
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: both, signWith: key1)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(2).storeRoot),
                                    fixture: StoreFixture.combined([both, onlyOn2]), signWith: key2)
        proxy = try SilentProxy(targetPort: env.builder(2).port, silentFromStart: true)
        let config = try env.sshConfig(sending: 2, toPort: proxy.port, name: "silent")
        var e = env.environment
        e["NIX_SSHOPTS"] = "-F \(config)"
        e["NIX_BRIDGE_STATE_DIR"] = env.work.appendingPathComponent("state").path
        environment = e
        dest = try FixtureStore.scratchDirectory("nb-cli-silent-dest")
    }

    deinit {
        proxy.stop()
        try? FileManager.default.removeItem(at: dest)
    }

    func bridge(_ args: [String]) throws -> (TestSupport.Output, Duration) {
        guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        let start = ContinuousClock.now
        let out = try TestSupport.run([binary] + args, environment: environment, check: false)
        return (out, ContinuousClock.now - start)
    }

    var fleetArgs: [String] {
        ["--builders", "ssh-ng://builder1 x86_64-linux - 1 1 ; ssh-ng://builder2 x86_64-linux - 1 1",
         "--option", "trusted-public-keys", "\(key1.publicKey) \(key2.publicKey)",
         "--option", "connect-timeout", "2"]
    }

    var cacheArgs: [String] { ["--narinfo-cache", env.work.appendingPathComponent("narinfo.sqlite").path] }

    func printed(_ f: StoreFixture) -> [String] { f.printedPaths }

    @Test func lookupEndsWithBuilder1sAnswersThenSkipsTheRememberedBuilder() throws {
        let (first, took) = try bridge(["lookup"] + fleetArgs + cacheArgs + printed(both))
        #expect(first.status == 0, "every path has a usable copy on builder1: \(first.stderr)")
        #expect(first.stderr.contains("warning: cannot query 'ssh-ng://builder2': builder 'ssh-ng://builder2': timed out after 2 s during SSH handshake"),
                "\(first.stderr)")
        #expect(first.text.components(separatedBy: "ssh-ng://builder1: signed by 'builder1-1', trusted").count == 4, "\(first.text)")
        #expect(took < .seconds(6), "\(took)")
        let failedFile = env.work.appendingPathComponent("state/failed-builders/ssh-ng:__builder2").path
        #expect(FileManager.default.fileExists(atPath: failedFile))

        // The next command: a path only builder2 has. It is not waited on again, and the
        // missing answer is an error that says why.
        let dialled = proxy.connections
        let (second, quick) = try bridge(["lookup"] + fleetArgs + cacheArgs + printed(onlyOn2))
        #expect(second.status == 1)
        #expect(quick < .seconds(2), "\(quick)")
        #expect(proxy.connections == dialled, "builder2 was not dialled again")
        #expect(second.text.contains("not found on the stores that answered (1 could not be asked)"), "\(second.text)")
        #expect(second.stderr.contains("'ssh-ng://builder2': not asked: it failed"), "\(second.stderr)")
        #expect(second.stderr.contains("during SSH handshake"), "\(second.stderr)")
        #expect(second.stderr.contains("error: 1 of 1 paths have no usable copy on the stores that answered; 'ssh-ng://builder2' could not be asked, so the answer is incomplete"),
                "\(second.stderr)")

        let (subst, _) = try bridge(["substitute", "--store", "local?root=\(dest.path)"] + fleetArgs + cacheArgs + printed(onlyOn2))
        #expect(subst.status == 1)
        #expect(subst.stderr.contains("no trusted substitute for '\(printed(onlyOn2)[0])'"), "\(subst.stderr)")
        #expect(subst.stderr.contains("ssh-ng://builder2: not asked: it failed"), "\(subst.stderr)")

        // ping tries anyway (how one finds out a builder is back) and says what was remembered.
        let (ping, _) = try bridge(["ping", "--store", "ssh-ng://builder2"] + fleetArgs)
        #expect(ping.status == 1)
        #expect(ping.stderr.contains("note: 'ssh-ng://builder2' failed"), "\(ping.stderr)")
        #expect(ping.stderr.contains("other commands were skipping it"), "\(ping.stderr)")
        #expect(ping.stderr.contains("note: other commands skip 'ssh-ng://builder2' until "), "\(ping.stderr)")
        // Back: ping finds it answering and forgets the failure.
        proxy.resume()
        let (back, _) = try bridge(["ping", "--store", "ssh-ng://builder2"] + fleetArgs)
        #expect(back.status == 0, "\(back.stderr)")
        #expect(back.stderr.contains("and use it again now"), "\(back.stderr)")
        #expect(!FileManager.default.fileExists(atPath: failedFile))
    }
}
