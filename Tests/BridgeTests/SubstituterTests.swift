import Foundation
import NixCore
import NixSigning
import NixStore
import NixTransport
import Testing
import TestSupport
@testable import Bridge

/// Substitution from two real builders into a chroot store through a real
/// `nix-daemon --stdio`: closures, trust, and a builder serving a corrupted NAR.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class SubstituterTests {
    let env: SubstitutionScenario
    var fleet: Fleet { env.fleet }
    var work: URL { env.work }
    var key1: SigningKey { env.key1 }
    var key2: SigningKey { env.key2 }
    var closure: StoreFixture { env.fixture }
    var destURI: String { env.destURI }

    init() throws {
        env = try SubstitutionScenario(label: "subst",
                                         fixture: try StoreFixture.closure(size: 12, rootName: "subst-root", seed: 21))
    }

    deinit { env.stop() }

    func substituter(trusted: [SigningKey]) throws -> Substituter { try env.substituter(trusted: trusted) }
    func destInfos() throws -> [[String: Any]] { try env.destInfos() }

    @Test func fetchesAClosureReferencesFirstAndNixAgrees() async throws {
        let root = try #require(closure.roots.first)
        let fetched = try await substituter(trusted: [key1, key2]).substitute([root])
        #expect(Set(fetched) == Set(closure.paths))
        #expect(fetched.last == root)
        let infos = try destInfos()
        #expect(infos.count == closure.paths.count)
        for info in infos {
            let sigs = info["signatures"] as? [String] ?? []
            #expect(sigs.contains { $0.hasPrefix("builder1-1:") }, "fetched from the first builder with its signature")
        }
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        // Nothing left behind in the staging directory.
        let staged = try FileManager.default.contentsOfDirectory(atPath: work.path).filter { $0.hasPrefix("nix-bridge-nar-") }
        #expect(staged.isEmpty)
    }

    /// Small paths go in AddMultipleToStore batches (5 at most here), references before
    /// referrers across and within batches; real Nix finds them intact and signed.
    @Test func addsSmallPathsInBatchesReferencesFirst() async throws {
        var s = try substituter(trusted: [key1, key2])
        s.batchMaxPaths = 5
        let batches = BatchLog()
        s.batchAdded = { batches.add($0) }
        let root = try #require(closure.roots.first)
        let fetched = try await s.substitute([root])
        #expect(Set(fetched) == Set(closure.paths))
        let added = batches.all
        #expect(added.count == (closure.paths.count + 4) / 5, "\(added.map(\.count))")
        #expect(added.allSatisfy { $0.count <= 5 })
        let order = added.flatMap { $0 }
        #expect(order.count == closure.paths.count && Set(order) == Set(closure.paths))
        for (i, path) in order.enumerated() {
            let item = try #require(closure.items.first { $0.path == path })
            let before = Set(order[..<i])
            #expect(item.references.allSatisfy { $0 == path || before.contains($0) }, "a reference of \(path) came after it")
        }
        let infos = try destInfos()
        #expect(infos.count == closure.paths.count)
        for info in infos {
            let printed = try #require(info["path"] as? String)
            let item = try #require(closure.items.first { StoreDirectory.default.print($0.path) == printed })
            #expect(Set(info["references"] as? [String] ?? []) == Set(item.references.map { StoreDirectory.default.print($0) }))
            #expect((info["signatures"] as? [String] ?? []).contains { $0.hasPrefix("builder1-1:") })
        }
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0 && !verify.stderr.contains("modified") && !verify.stderr.contains("error"), "\(verify.stderr)")
        let sigs = try TestSupport.nix(["path-info", "--sigs", "--recursive", "--store", destURI, StoreDirectory.default.print(root)])
        #expect(sigs.text.split(separator: "\n").count == closure.paths.count)
        #expect(sigs.text.split(separator: "\n").allSatisfy { $0.contains("builder1-1:") })
    }

    /// A path that became valid in the destination after planning (another client added
    /// it) is left out of its batch: Nix 2.8 would not read its NAR, and the rest of the
    /// batch would be misread. No path is fetched twice, nothing falls back.
    @Test func aPathAddedMeanwhileIsLeftOutOfItsBatch() async throws {
        let s = try substituter(trusted: [key1, key2])
        let root = try #require(closure.roots.first)
        let plan = try await s.plan([root], events: { _ in })
        #expect(plan.count == closure.paths.count)
        let middle = plan[plan.count / 2].path
        _ = try await s.substitute([middle])
        let alreadyThere = try await s.destination.queryValidPaths(Set(plan.map(\.path)))
        #expect(alreadyThere.contains(middle))
        let events = EventLog()
        try await SubstitutionRun(substituter: s, plan: plan, events: { events.add($0) }).run()
        #expect(events.failures.isEmpty, "\(events.failures)")
        let copied = events.events.compactMap { if case let .copying(p, _, _) = $0 { return p } else { return nil } }
        #expect(copied.count == plan.count, "each path fetched once, none again by a fallback")
        let infos = try destInfos()
        #expect(infos.count == closure.paths.count)
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0 && !verify.stderr.contains("modified") && !verify.stderr.contains("error"), "\(verify.stderr)")
    }

    /// builder1 dies as the first fetch-ahead NarFromPath is about to go out: the small
    /// paths whose fetches fail come from builder2 instead, still references first.
    @Test func builderKilledDuringFetchAheadFallsOverPathByPath() async throws {
        let root = try #require(closure.roots.first)
        let fleet = self.fleet
        let once = KillOnce()
        let events = EventLog()
        let fetched = try await substituter(trusted: [key1, key2]).substitute([root]) { event in
            events.add(event)
            // Killed once the plan is made (the lookup used builder1's connection) and before
            // its fetch-ahead can finish: killing at the first fetched byte raced with NARs that
            // had all arrived already (1 run in 12).
            // The listener goes too, first: with it alive, the store's pool reconnected to
            // builder1 and the fetches succeeded there (1 run in 3 under load).
            if case .planned = event {
                once.run {
                    let sessions = ProcessTree.descendants(of: fleet.sshdPIDs[0])
                    fleet.stop(builder: 1)
                    for pid in sessions { kill(pid, SIGKILL) }
                }
            }
        }
        #expect(Set(fetched) == Set(closure.paths))
        #expect(events.failures.contains { $0.hasPrefix("ssh-ng://builder1") }, "builder1's fetches failed")
        let infos = try destInfos()
        #expect(infos.count == closure.paths.count)
        #expect(infos.contains { ($0["signatures"] as? [String] ?? []).contains { $0.hasPrefix("builder2-1:") } })
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0 && !verify.stderr.contains("modified") && !verify.stderr.contains("error"), "\(verify.stderr)")
    }

    @Test func corruptedNAROnOneBuilderFallsOverToTheOther() async throws {
        // Flip a byte of one path's file on builder1: it now serves a NAR whose hash is not the signed one.
        let victim = try #require(closure.items.first { if case .file = $0.content { return true } else { return false } })
        let file = fleet.builders[0].storeRoot + StoreDirectory.default.print(victim.path)
        chmod(file, 0o644)
        var data = try Data(contentsOf: URL(fileURLWithPath: file))
        data[0] ^= 0xff
        try data.write(to: URL(fileURLWithPath: file))
        let events = EventLog()
        let fetched = try await substituter(trusted: [key1, key2]).substitute([victim.path]) { events.add($0) }
        #expect(fetched.contains(victim.path))
        #expect(events.failures.contains { $0.contains("builder1") && $0.contains("does not match") })
        let infos = try destInfos()
        let mine = try #require(infos.first { ($0["path"] as? String) == StoreDirectory.default.print(victim.path) })
        #expect((mine["signatures"] as? [String] ?? []).contains { $0.hasPrefix("builder2-1:") })
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    @Test func theFasterMachineIsTheSourceOfChoice() async throws {
        var s = try substituter(trusted: [key1, key2])
        s.lookup.speedFactors = ["ssh-ng://builder1": 1, "ssh-ng://builder2": 4]
        let root = try #require(closure.roots.first)
        let events = EventLog()
        let fetched = try await s.substitute([root]) { events.add($0) }
        #expect(Set(fetched) == Set(closure.paths))
        let sources = events.events.compactMap { if case let .fetched(_, from, _) = $0 { return from } else { return nil } }
        #expect(sources.count == closure.paths.count && sources.allSatisfy { $0 == "ssh-ng://builder2" })
        for info in try destInfos() {
            #expect((info["signatures"] as? [String] ?? []).contains { $0.hasPrefix("builder2-1:") })
        }
    }

    @Test func untrustedEverywhereFetchesNothing() async throws {
        let stranger = try SigningKey.generate(name: "stranger-1", in: work)
        let root = try #require(closure.roots.first)
        await #expect(throws: Substituter.SubstituteError.self) {
            _ = try await self.substituter(trusted: [stranger]).substitute([root])
        }
        let out = try TestSupport.nix(["path-info", "--json", "--all", "--store", destURI], check: false)
        let infos = (try? JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]]) ?? []
        #expect(infos.isEmpty)
    }
}

final class BatchLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [[StorePath]] = []
    func add(_ b: [StorePath]) { lock.withLock { list.append(b) } }
    var all: [[StorePath]] { lock.withLock { list } }
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Substituter.Event] = []
    func add(_ e: Substituter.Event) { lock.withLock { list.append(e) } }
    var events: [Substituter.Event] { lock.withLock { list } }
    var failures: [String] {
        lock.withLock {
            list.compactMap { if case let .sourceFailed(_, from, error) = $0 { return from + ": " + error } else { return nil } }
        }
    }
}
