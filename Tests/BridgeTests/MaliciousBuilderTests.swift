import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixTransport
import Testing
import TestSupport
@testable import Bridge
@testable import NixStore

/// builder2's sshd runs a lying daemon (`MaliciousDaemon`) that serves builder1's signed path
/// infos, so its copies look trusted; builder1 is real. Each lie ends in bounded time with a
/// clear message naming builder2, builder1's answers are used, nothing the liar sent is
/// registered or cached.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && MaliciousDaemon.python != nil,
                             "needs nix (nix-bin), sshd (openssh-server), root and /usr/bin/python3"))
struct MaliciousBuilderTests {
    /// builder1's signed infos of every fixture path, as the fake serves them.
    static func fakeInfos(_ env: SilentBuilderFleet) async throws -> [MaliciousDaemon.Info] {
        let b1 = try Self.opener(env).store(try StoreURI(parsing: "ssh-ng://builder1"))
        defer { Task { await b1.close() } }
        var out: [MaliciousDaemon.Info] = []
        for p in env.fixture.paths {
            let info = try #require(try await b1.queryPathInfo(p))
            let dir = env.fixture.storeDirectory
            out.append(.init(path: dir.print(p), narHash: info.narHash.string(.base16, withAlgorithm: false),
                             narSize: info.narSize, references: info.references.map(dir.print).sorted(),
                             sigs: info.sigs.sorted()))
        }
        return out
    }

    /// Timeouts that a loaded machine meets: the lies below end by their own bounds, not by
    /// a timeout, so a slow start of the fake or of builder1 must not fail a store first.
    static func opener(_ env: SilentBuilderFleet, stalled: Duration = .seconds(5)) throws -> StoreOpener {
        try env.opener(connect: .seconds(15), stalled: stalled)
    }

    func fake(_ env: SilentBuilderFleet, _ mode: String, extra: [String] = []) async throws -> String {
        let program = try MaliciousDaemon.install(in: env.work, mode: mode, infos: try await Self.fakeInfos(env), extra: extra)
        return "ssh-ng://builder2?remote-program=\(program)"
    }

    @Test func anEndlessNARIsCutOffAtOnceAndTheNextHolderIsUsed() async throws {
        let env = try SilentBuilderFleet(label: "evil-nar")
        defer { env.stop() }
        let uri = try await fake(env, "endless-nar")
        let opener = try Self.opener(env, stalled: .seconds(5))
        var lookup = try env.lookup(opener, builder2: uri)
        lookup.speedFactors = [uri: 10] // the liar is the preferred source
        let s = Substituter(lookup: lookup, destination: try opener.store(try StoreURI(parsing: env.destURI)))
        let log = EventLog()
        let (fetched, took) = try await elapsed { try await s.substitute([env.large]) { log.add($0) } }
        #expect(fetched == [env.large])
        #expect(log.failures.contains { $0.hasPrefix(uri) && $0.contains("more") }, "\(log.events)")
        #expect(log.events.contains { if case let .fetched(_, from, _) = $0 { from == "ssh-ng://builder1" } else { false } })
        #expect(took < .seconds(10), "\(took)")
        // The liar was cut off within a few read-aheads of the NAR's 8 MiB, not left to send on.
        try await Task.sleep(for: .milliseconds(500))
        let sent = MaliciousDaemon.log(in: env.work, mode: "endless-nar")
        let bytes = sent.split(separator: "\n").last.flatMap { $0.split(separator: " ").last }.flatMap { UInt64($0) }
        let n = try #require(bytes, "fake log: \(sent)")
        #expect(n < 64 << 20, "the fake got \(n) bytes out")
        let dest = try env.verifyDestination()
        #expect(dest.ok, "\(dest.stderr)")
        #expect(dest.paths == [env.fixture.storeDirectory.print(env.large)])
    }

    @Test func garbageAfterStderrLastIsAProtocolErrorAndBuilder1Answers() async throws {
        let env = try SilentBuilderFleet(label: "evil-garbage")
        defer { env.stop() }
        let uri = try await fake(env, "garbage-after-last")
        let (r, took) = await elapsed { await (try! env.lookup(try! Self.opener(env), builder2: uri)).lookup(env.fixture.paths) }
        #expect(r.answers.allSatisfy { $0.best?.store == "ssh-ng://builder1" })
        #expect(r.answers.allSatisfy { $0.locations.map(\.store) == ["ssh-ng://builder1"] }, "nothing kept from the liar")
        let f = try #require(r.failures.first)
        #expect(f.store == uri && f.error.contains("protocol error talking to '\(uri)'"), "\(f.error)")
        #expect(took < .seconds(5), "\(took)")
    }

    @Test func anOversizedListIsRefusedInBoundedTimeAndMemory() async throws {
        let env = try SilentBuilderFleet(label: "evil-list")
        defer { env.stop() }
        let uri = try await fake(env, "oversized-list")
        let (r, took) = await elapsed { await (try! env.lookup(try! Self.opener(env), builder2: uri)).lookup(env.fixture.paths) }
        #expect(r.answers.allSatisfy { $0.best?.store == "ssh-ng://builder1" })
        let f = try #require(r.failures.first)
        #expect(f.store == uri, "\(r.failures)")
        #expect(took < .seconds(5), "\(took)")
    }

    /// A store's word counts only for what it was asked: paths it volunteers are neither
    /// answered, fetched nor cached (a trust requirement: they might be anything).
    @Test func validPathsThatWereNotAskedForAreIgnored() async throws {
        let env = try SilentBuilderFleet(label: "evil-extra")
        defer { env.stop() }
        let asked = Array(env.fixture.paths.prefix(2))
        let volunteered = env.fixture.paths.dropFirst(2).map(env.fixture.storeDirectory.print)
        let uri = try await fake(env, "extra-paths", extra: volunteered)
        let cacheFile = env.work.appendingPathComponent("narinfo.sqlite").path
        let cache = try NarInfoCache(path: cacheFile)
        var lookup = try env.lookup(try Self.opener(env), builder2: uri)
        lookup.cache = cache
        let r = await lookup.lookup(asked)
        #expect(r.failures.isEmpty, "\(r.failures)")
        #expect(r.answers.map(\.path) == asked)
        #expect(r.answers.allSatisfy { Set($0.locations.map(\.store)) == [uri, "ssh-ng://builder1"] })
        for p in env.fixture.paths.dropFirst(2) {
            let outcome = try cache.lookup(storeURI: uri, hashPart: p.hashPart)
            #expect(outcome == .unknown, "nothing cached for a volunteered path: \(outcome)")
        }
    }
}
