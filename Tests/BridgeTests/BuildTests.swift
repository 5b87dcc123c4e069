import Foundation
import NarInfoCache
import NixCore
import NixStore
import Testing
import TestSupport
@testable import Bridge

/// `FleetBuilder` against two real builders that build sandboxed: builder1 offers no extra
/// feature, builder2 offers `big-parallel`. Derivations come from the real nix-instantiate.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd and root"))
struct BuildTests {
    static func dep(_ f: Fleet, tag: String) -> String {
        f.expression(name: "dep-\(tag)", script: "echo dep-log; echo dep-\(tag) > $out")
    }

    /// A derivation that needs `dep` and `big-parallel` (only builder2 has it).
    static func top(_ f: Fleet, tag: String) -> String {
        let script = "echo building top; read line < ${dep}; echo \"$line top\" > $out"
        return "let dep = \(dep(f, tag: tag)); in " + f.expression(name: "top-\(tag)", script: script, features: ["big-parallel"])
    }

    @Test("an output a builder holds is fetched, verified, and not rebuilt; its inputs are never looked at")
    func hitIsFetched() async throws {
        let f = try Fleet(features: [[], ["big-parallel"]])
        defer { f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let expr = f.expression(name: "held-\(tag)", script: "echo held > $out")
        let out = try f.buildOnBuilder(1, expression: expr)
        let drv = try f.instantiate(expr)
        let before = (f.buildCount(1), f.buildCount(2))
        #expect(before.0 == 1)
        let events = BuildEvents()
        let built = try await f.fleetBuilder().build([try DerivedPath(parsing: drv, in: .default)]) { events.add($0) }
        #expect(built.flatMap(\.paths).map(StoreDirectory.default.print) == [out])
        #expect(f.buildCount(1) == before.0 && f.buildCount(2) == before.1)
        #expect(events.building.isEmpty)
        #expect(f.clientHas(out))
        try TestSupport.run(["nix-store", "--store", f.clientStoreURI, "--verify-path", out])
        let sigs = try TestSupport.nix(["path-info", "--sigs", "--store", f.clientStoreURI, out]).text
        #expect(sigs.contains("builder1-1:"))
    }

    @Test("a miss builds its input, then itself on the machine with the feature; outputs land verified and signed")
    func missBuildsOnTheRightMachine() async throws {
        let f = try Fleet(features: [[], ["big-parallel"]])
        defer { f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let drv = try f.instantiate(Self.top(f, tag: tag))
        let cache = try NarInfoCache(path: f.work.appendingPathComponent("cache.sqlite").path)
        let events = BuildEvents()
        let built = try await f.fleetBuilder(cache: cache).build([try DerivedPath(parsing: drv, in: .default)]) { events.add($0) }
        let out = StoreDirectory.default.print(try #require(built.first?.paths.first))
        #expect(events.building.contains { $0.0 == drv && $0.1 == "ssh-ng://builder2" })
        #expect(events.building.count == 2)
        #expect(events.logLines.contains("building top"))
        #expect(f.buildCount(2) >= 1)
        try TestSupport.run(["nix-store", "--store", f.clientStoreURI, "--verify-path", out])
        let contents = try String(contentsOfFile: f.clientRoot + out, encoding: .utf8)
        #expect(contents == "dep-\(tag) top\n")
        let sigs = try TestSupport.nix(["path-info", "--sigs", "--store", f.clientStoreURI, out]).text
        #expect(sigs.contains("builder2-1:") && sigs.contains("client-1:"))
        // The cache now knows builder2 holds the output.
        let hash = String(out.dropFirst("/nix/store/".count).prefix(32))
        let answer = try cache.lookup(storeURI: "ssh-ng://builder2", hashParts: [hash])
        if case .hit = answer.first {} else { Issue.record("no positive cache entry for \(out) on builder2: \(answer)") }
    }

    @Test("a failing builder fails the build with Nix's message and exit status 100")
    func failingBuilder() async throws {
        let f = try Fleet(features: [[], ["big-parallel"]])
        defer { f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let drv = try f.instantiate(f.expression(name: "fails-\(tag)", script: "echo about to fail; exit 3"))
        do {
            _ = try await f.fleetBuilder().build([try DerivedPath(parsing: drv, in: .default)])
            Issue.record("the build succeeded")
        } catch let e as BuildError {
            #expect(e.exitStatus == 100)
            #expect(e.message.hasPrefix("build of '\(drv)' on 'ssh-ng://builder"))
            #expect(e.message.contains("builder for '\(drv)' failed with exit code 3"))
            #expect(!e.message.contains("\u{1b}["))
        }
    }

    @Test("a builder killed mid-build: the machine is disabled, the build moves to the other one, nothing partial lands")
    func killedBuilderFailsOver() async throws {
        let f = try Fleet(features: [[], []])
        defer { f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        // A sleep with a unique duration, so the test finds it among the builder's processes.
        let marker = "sleep 3.\(Int.random(in: 100_000...999_999))"
        let drv = try f.instantiate(f.expression(name: "slow-\(tag)", script: "echo started; /bin/\(marker); echo done > $out"))
        let events = BuildEvents()
        let builder = try f.fleetBuilder()
        let task = Task { try await builder.build([try DerivedPath(parsing: drv, in: .default)]) { events.add($0) } }
        // Wait for the build to start on one builder, then kill that builder's sessions.
        var victim: Int?
        let deadline = Date().addingTimeInterval(10)
        while victim == nil && Date() < deadline {
            for n in 1...2 where !f.builderProcesses(n, containing: marker).isEmpty { victim = n }
            if victim == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let n = try #require(victim, "the build never started")
        ProcessTree.killDescendants(of: f.sshdPIDs[n - 1])
        let built = try await task.value
        let out = StoreDirectory.default.print(try #require(built.first?.paths.first))
        #expect(events.disabled == ["ssh-ng://builder\(n)"])
        #expect(events.building.map(\.1) == ["ssh-ng://builder\(n)", "ssh-ng://builder\(3 - n)"])
        try TestSupport.run(["nix-store", "--store", f.clientStoreURI, "--verify-path", out])
        #expect(try String(contentsOfFile: f.clientRoot + out, encoding: .utf8) == "done\n")
    }

    @Test("independent builds run in parallel up to the fleet's capacity (sum of maxJobs), on every machine")
    func parallelUpToCapacity() async throws {
        let f = try Fleet(features: [[], []])
        defer { f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let leaves = (0..<4).map { f.expression(name: "leaf\($0)-\(tag)", script: "/bin/sleep 1; echo \($0) > $out") }
        let top = f.expression(name: "all-\(tag)", script: "read a < ${l0}; read b < ${l1}; read c < ${l2}; read d < ${l3}; echo $a$b$c$d > $out")
        let drv = try f.instantiate("let l0 = \(leaves[0]); l1 = \(leaves[1]); l2 = \(leaves[2]); l3 = \(leaves[3]); in \(top)")
        let events = BuildEvents()
        let built = try await f.fleetBuilder().build([try DerivedPath(parsing: drv, in: .default)]) { events.add($0) }
        // Two at once (one per one-job machine), never more: the events show how many ran.
        var running = 0, most = 0
        for e in events.all {
            if case .building = e { running += 1; most = max(most, running) }
            if case .built = e { running -= 1 }
        }
        #expect(most == 2)
        #expect(Set(events.building.map(\.1)) == ["ssh-ng://builder1", "ssh-ng://builder2"])
        #expect(events.building.count == 5)
        let out = StoreDirectory.default.print(try #require(built.first?.paths.first))
        #expect(try String(contentsOfFile: f.clientRoot + out, encoding: .utf8) == "0123\n")
    }

    @Test("the only builder killed mid-build: the build fails cleanly (exit 1), nothing is registered locally")
    func killedOnlyBuilderFailsCleanly() async throws {
        let f = try Fleet(features: [[]])
        defer { f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let marker = "sleep 3.\(Int.random(in: 100_000...999_999))"
        let expr = f.expression(name: "lone-\(tag)", script: "echo started; /bin/\(marker); echo done > $out")
        let drv = try f.instantiate(expr)
        let out = try TestSupport.run(["nix-instantiate", "--store", f.clientStoreURI, "--eval", "-E", "(\(expr)).outPath"]).trimmed
            .trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        let builder = try f.fleetBuilder()
        let task = Task { try await builder.build([try DerivedPath(parsing: drv, in: .default)]) }
        let deadline = Date().addingTimeInterval(10)
        while f.builderProcesses(1, containing: marker).isEmpty && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!f.builderProcesses(1, containing: marker).isEmpty, "the build never started")
        ProcessTree.killDescendants(of: f.sshdPIDs[0])
        do {
            _ = try await task.value
            Issue.record("the build succeeded")
        } catch let e as BuildError {
            #expect(e.exitStatus == 1)
            #expect(e.message.hasPrefix("unable to start any build"))
        }
        #expect(out.hasPrefix("/nix/store/") && out.hasSuffix("-lone-\(tag)"))
        #expect(!f.clientHas(out))
        #expect(!FileManager.default.fileExists(atPath: f.clientRoot + out))
    }

    @Test("builders-use-substitutes: the builder fetches a missing input itself; without it we upload it")
    func buildersUseSubstitutes() async throws {
        let f = try Fleet(features: [[], ["big-parallel"]])
        defer { f.stop() }
        try f.substitute(builder: 2, from: 1)
        for useSubstitutes in [true, false] {
            let tag = UUID().uuidString.prefix(8).lowercased()
            let depExpr = Self.dep(f, tag: tag)
            let depOut = try f.buildOnBuilder(1, expression: depExpr)
            let drv = try f.instantiate(Self.top(f, tag: tag))
            let events = BuildEvents()
            let built = try await f.fleetBuilder(buildersUseSubstitutes: useSubstitutes)
                .build([try DerivedPath(parsing: drv, in: .default)]) { events.add($0) }
            // The input was a hit on builder1: fetched, not built; the top built on builder2.
            #expect(events.building.map(\.1) == ["ssh-ng://builder2"])
            #expect(f.clientHas(depOut))
            #expect(f.builderHas(2, depOut))
            #expect(events.uploads == (useSubstitutes ? [] : ["\(depOut) to ssh-ng://builder2"]))
            let out = StoreDirectory.default.print(try #require(built.first?.paths.first))
            #expect(try String(contentsOfFile: f.clientRoot + out, encoding: .utf8) == "dep-\(tag) top\n")
        }
    }

    @Test("the first failure stops the other running builds (Nix without --keep-going)")
    func firstFailureStopsTheOthers() async throws {
        let f = try Fleet(features: [[], []])
        defer { f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let marker = "sleep 8.\(Int.random(in: 100_000...999_999))"
        let slow = f.expression(name: "slow-\(tag)", script: "/bin/\(marker); echo > $out")
        let bad = f.expression(name: "bad-\(tag)", script: "/bin/sleep 0.5; exit 1")
        let top = f.expression(name: "top-\(tag)", script: "read a < ${slow}; read b < ${bad}; echo > $out")
        let drv = try f.instantiate("let slow = \(slow); bad = \(bad); in \(top)")
        let started = Date()
        let events = BuildEvents()
        do {
            _ = try await f.fleetBuilder().build([try DerivedPath(parsing: drv, in: .default)]) { events.add($0) }
            Issue.record("the build succeeded")
        } catch let e as BuildError {
            #expect(e.exitStatus == 100)
            #expect(e.message == "1 dependencies of derivation '\(drv)' failed to build")
        }
        #expect(Date().timeIntervalSince(started) < 6, "waited for the slow build")
        #expect(events.all.contains { if case let .failed(fl) = $0 { return fl.message.contains("-bad-\(tag).drv") }; return false })
        // The slow build was killed on its builder.
        try await Task.sleep(for: .milliseconds(500))
        #expect(f.builderProcesses(1, containing: marker).isEmpty && f.builderProcesses(2, containing: marker).isEmpty)
    }

    @Test("two targets, one fails: the other is stopped and the build ends with Nix's 'build of ..., ... failed'")
    func twoTargetsOneFails() async throws {
        let f = try Fleet(features: [[], []])
        defer { f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let bad = try f.instantiate(f.expression(name: "bad-\(tag)", script: "/bin/sleep 0.3; exit 2"))
        let slow = try f.instantiate(f.expression(name: "slow-\(tag)", script: "/bin/sleep 8; echo > $out"))
        let events = BuildEvents()
        do {
            _ = try await f.fleetBuilder().build([try DerivedPath(parsing: bad, in: .default),
                                                  try DerivedPath(parsing: slow, in: .default)]) { events.add($0) }
            Issue.record("the build succeeded")
        } catch let e as BuildError {
            #expect(e.exitStatus == 100)
            #expect(e.message == "build of \([bad, slow].sorted().map { "'\($0)'" }.joined(separator: ", ")) failed")
            // The failed target's own error was printed before.
            #expect(events.all.contains { if case let .failed(fl) = $0 { return fl.message.contains("builder for '\(bad)' failed with exit code 2") }; return false })
        }
    }
}
