import Foundation
import NixCore
import NixSigning
import NixTransport
import Testing
import TestSupport
@testable import Bridge
@testable import NixStore

/// Two real builders holding the same signed paths; builder2 is reached through a proxy that
/// goes silent (no reset, no end of file) at a chosen phase. Small timeouts keep each test to
/// seconds: whatever the phase, the work ends in bounded time with builder1's answers, the
/// error names builder2 and what it was doing, and nothing partial is registered.
final class SilentBuilderFleet: @unchecked Sendable {
    let fleet: Fleet
    let proxy: SilentProxy
    let work: URL
    let destRoot: URL
    let key1, key2: SigningKey
    let fixture: StoreFixture
    let large: StorePath
    let sshConfig: String
    let failedDir: String

    init(label: String, silentFromStart: Bool = false, builder2Config: [String] = []) throws {
        fleet = try Fleet(count: 2)
        work = try TestSupport.temporaryDirectory("nb-\(label)")
        destRoot = try FixtureStore.scratchDirectory("nb-\(label)-dest")
        key1 = try SigningKey.generate(name: "builder1-1", in: work)
        key2 = try SigningKey.generate(name: "builder2-1", in: work)
        let big = try StoreFixture.large(mebibytes: 8, name: "silent-large", seed: 12)
        fixture = StoreFixture.combined([try StoreFixture.make(count: 4, seed: 12, namePrefix: "silent"), big])
        large = big.roots[0]
        _ = try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[0].storeRoot), fixture: fixture, signWith: key1)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[1].storeRoot), fixture: fixture, signWith: key2)
        proxy = try SilentProxy(targetPort: fleet.builders[1].port, silentFromStart: silentFromStart)
        // First value wins in ssh_config: builder2 is dialled through the proxy.
        sshConfig = work.path + "/ssh_config"
        let head = (["Host builder2", "  Port \(proxy.port)"] + builder2Config.map { "  " + $0 }).joined(separator: "\n")
        try (head + "\n\n" + String(contentsOfFile: fleet.sshConfig, encoding: .utf8))
            .write(toFile: sshConfig, atomically: true, encoding: .utf8)
        failedDir = work.path + "/failed-builders"
    }

    func stop() {
        proxy.stop()
        for pid in fleet.sshdPIDs { ProcessTree.killDescendants(of: pid) }
        fleet.stop()
        try? FileManager.default.removeItem(at: work)
        try? FileManager.default.removeItem(at: destRoot)
    }

    var destURI: String { "local?root=\(destRoot.path)" }

    func opener(connect: Duration = .seconds(2), stalled: Duration? = .seconds(1)) throws -> StoreOpener {
        var o = StoreOpener()
        o.sshConfig = try SSHConfig.load(path: sshConfig)
        o.connectTimeout = connect
        o.stalledTimeout = stalled
        return o
    }

    var failed: FailedBuilders { FailedBuilders(directory: failedDir, ttl: .seconds(60)) }

    /// A lookup over builder2 (through the proxy) first, then builder1.
    func lookup(_ opener: StoreOpener, builder2: String = "ssh-ng://builder2", remember: Bool = true) throws -> Lookup {
        let stores = try [builder2, "ssh-ng://builder1"].map { try opener.store(try StoreURI(parsing: $0)) }
        let keys = try TrustedKeys(parsing: [key1, key2].map(\.publicKey).joined(separator: " "))
        return Lookup(stores: stores, trustedKeys: keys, failedBuilders: remember ? failed : nil)
    }

    func substituter(_ opener: StoreOpener) throws -> Substituter {
        Substituter(lookup: try lookup(opener), destination: try opener.store(try StoreURI(parsing: destURI)))
    }

    /// `nix-store --verify --check-contents` on the destination, and what it holds.
    func verifyDestination() throws -> (ok: Bool, paths: [String], stderr: String) {
        let v = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        let out = try TestSupport.nix(["path-info", "--all", "--store", destURI])
        let paths = String(decoding: out.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        return (v.status == 0 && !v.stderr.contains("corrupt") && !v.stderr.contains("modified"), paths, v.stderr)
    }

    /// A remote program on builder2 that writes `marker` and then runs `body` (`$@` is `--stdio`).
    func remoteProgram(_ name: String, _ body: String) throws -> String {
        let path = work.path + "/\(name).sh"
        try "#!/bin/sh\ntouch \(work.path)/\(name).started\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func started(_ name: String) -> Bool { FileManager.default.fileExists(atPath: work.path + "/\(name).started") }
}

func elapsed<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let r = try await body()
    return (r, ContinuousClock.now - start)
}

@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
struct SilentBuilderTests {
    func lookupFindsEverythingOnBuilder1(_ r: Lookup.Result, _ env: SilentBuilderFleet) {
        #expect(r.answers.count == env.fixture.paths.count)
        #expect(r.answers.allSatisfy { $0.best?.store == "ssh-ng://builder1" }, "builder1's answers are kept")
    }

    @Test func linkSilentDuringSSHHandshakeTimesOutAndIsRememberedForTheNextLookup() async throws {
        let env = try SilentBuilderFleet(label: "silent-ssh", silentFromStart: true)
        defer { env.stop() }
        let (r, took) = await elapsed { await (try! env.lookup(try! env.opener())).lookup(env.fixture.paths) }
        lookupFindsEverythingOnBuilder1(r, env)
        let f = try #require(r.failures.first)
        #expect(r.failures.count == 1 && f.store == "ssh-ng://builder2")
        #expect(f.error.contains("builder 'ssh-ng://builder2': timed out after 2 s during SSH handshake"), "\(f.error)")
        #expect(took < .seconds(6), "\(took)")
        let memo = try #require(env.failed.remembered("ssh-ng://builder2"))
        #expect(memo.phase == "SSH handshake")
        // The next lookup (another process would read the same file) does not wait on it.
        let connections = env.proxy.connections
        let (again, quick) = await elapsed { await (try! env.lookup(try! env.opener())).lookup(env.fixture.paths) }
        lookupFindsEverythingOnBuilder1(again, env)
        #expect(quick < .milliseconds(1500), "\(quick)")
        #expect(env.proxy.connections == connections, "builder2 was not dialled again")
        #expect(again.failures.first?.error.contains("not asked: it failed") == true, "\(again.failures)")
        #expect(again.failures.first?.error.contains("tried again in") == true, "\(again.failures)")
    }

    @Test func linkSilentDuringWorkerHandshake() async throws {
        let env = try SilentBuilderFleet(label: "silent-worker")
        defer { env.stop() }
        // The daemon starts only once the link is silent, however late the watcher runs.
        let silent = env.work.path + "/link-silent"
        let program = try env.remoteProgram("late", "while [ ! -e \(silent) ]; do sleep 0.05; done\nexec nix-daemon \"$@\"")
        let watcher = Task {
            while !env.started("late") { try await Task.sleep(for: .milliseconds(5)) }
            env.proxy.goSilent()
            _ = FileManager.default.createFile(atPath: silent, contents: nil)
        }
        defer { watcher.cancel() }
        let lookup = try env.lookup(try env.opener(), builder2: "ssh-ng://builder2?remote-program=\(program)")
        let (r, took) = await elapsed { await lookup.lookup(env.fixture.paths) }
        lookupFindsEverythingOnBuilder1(r, env)
        let f = try #require(r.failures.first)
        #expect(f.error.contains("timed out after 2 s during worker handshake"), "\(f.error)")
        #expect(took < .seconds(8), "\(took)")
    }

    @Test func remoteProgramThatNeverAnswers() async throws {
        let env = try SilentBuilderFleet(label: "silent-program")
        defer { env.stop() }
        // Reads its input and never writes: the SSH session is alive, the daemon is not.
        let program = try env.remoteProgram("mute", "exec cat > /dev/null")
        let lookup = try env.lookup(try env.opener(), builder2: "ssh-ng://builder2?remote-program=\(program)")
        let (r, took) = await elapsed { await lookup.lookup(env.fixture.paths) }
        lookupFindsEverythingOnBuilder1(r, env)
        #expect(r.failures.first?.error.contains("timed out after 2 s during worker handshake") == true, "\(r.failures)")
        #expect(took < .seconds(6), "\(took)")
        #expect(env.failed.remembered(lookup.stores[0].uri.description)?.phase == "worker handshake")
    }

    @Test func linkSilentDuringQueryPathInfo() async throws {
        let env = try SilentBuilderFleet(label: "silent-qpi")
        defer { env.stop() }
        let store = try env.opener().store(try StoreURI(parsing: "ssh-ng://builder2"))
        defer { Task { await store.close() } }
        _ = try await store.handshake()
        env.proxy.goSilent()
        let (result, took) = await elapsed { () -> Result<PathInfo?, StoreError> in
            do { return .success(try await store.queryPathInfo(env.fixture.paths[0])) } catch { return .failure(error as! StoreError) }
        }
        guard case let .failure(e) = result else { Issue.record("answered through a silent link"); return }
        #expect("\(e)" == "builder 'ssh-ng://builder2': timed out after 1 s during QueryPathInfo (no data moved)")
        #expect(took < .seconds(4), "\(took)")
    }

    /// With no stall timeout, ServerAliveInterval/ServerAliveCountMax alone end a dead link.
    @Test func serverAliveCountMaxEndsADeadLink() async throws {
        let env = try SilentBuilderFleet(label: "silent-alive", builder2Config: ["ServerAliveInterval 1", "ServerAliveCountMax 1"])
        defer { env.stop() }
        let store = try env.opener(stalled: nil).store(try StoreURI(parsing: "ssh-ng://builder2"))
        defer { Task { await store.close() } }
        _ = try await store.handshake()
        env.proxy.goSilent()
        let (result, took) = await elapsed { () -> Result<PathInfo?, StoreError> in
            do { return .success(try await store.queryPathInfo(env.fixture.paths[0])) } catch { return .failure(error as! StoreError) }
        }
        guard case let .failure(e) = result else { Issue.record("answered through a silent link"); return }
        #expect("\(e)".contains("timed out after 2 s during a transfer (server not responding to keepalives)"), "\(e)")
        #expect(e.isTimeout)
        #expect(took < .seconds(5), "\(took)")
    }

    @Test func linkSilentDuringNarFromPathFailsOverAndRegistersOnlyWhatMatched() async throws {
        let env = try SilentBuilderFleet(label: "silent-nar")
        defer { env.stop() }
        let proxy = env.proxy
        let log = EventLog()
        let (fetched, took) = try await elapsed {
            try await env.substituter(try env.opener()).substitute([env.large]) { event in
                log.add(event)
                if case let .received(_, from, _) = event, from == "ssh-ng://builder2" { proxy.goSilent() }
            }
        }
        #expect(fetched == [env.large])
        #expect(log.failures.contains { $0.hasPrefix("ssh-ng://builder2") && $0.contains("timed out after 1 s during NarFromPath") },
                "\(log.failures)")
        #expect(took < .seconds(10), "\(took)")
        let dest = try env.verifyDestination()
        #expect(dest.ok, "\(dest.stderr)")
        #expect(dest.paths == [env.fixture.storeDirectory.print(env.large)])
    }
}
