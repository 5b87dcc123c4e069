import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore
import NixTransport
import Testing
import TestSupport
@testable import Bridge

/// Builds on two real builders where builder1 is reached through a `SilentProxy` that goes
/// silent while an input is uploaded to it or while its output is copied back: the stall is
/// found within `stalled-download-timeout` (2 s here), builder1 is disabled (and remembered),
/// the build moves to builder2, and only checked outputs land in the client store.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
struct SilentBuildTests {
    final class Env: @unchecked Sendable {
        let f: Fleet
        let proxy: SilentProxy
        let sshConfig: String
        let failed: FailedBuilders

        init() throws {
            f = try Fleet(features: [[], []], label: "nb-silent-build")
            proxy = try SilentProxy(targetPort: f.builders[0].port)
            sshConfig = try f.sshConfig(sending: 1, toPort: proxy.port, name: "silent")
            failed = FailedBuilders(directory: f.work.appendingPathComponent("failed-builders").path)
        }

        func stop() {
            proxy.stop()
            f.stop()
        }

        func builder() throws -> FleetBuilder {
            var opener = StoreOpener()
            opener.sshConfig = try SSHConfig.load(path: sshConfig)
            opener.connectTimeout = .seconds(3)
            opener.stalledTimeout = .seconds(2)
            let lookup = Lookup(stores: [try opener.store(try StoreURI(parsing: "ssh-ng://builder2"))],
                                trustedKeys: try TrustedKeys(parsing: f.trustedPublicKeys))
            let state = f.work.appendingPathComponent("load").path
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            // builder1 first: the faster machine.
            let machines = try f.machines().map { m in
                var m = m
                if m.storeUri == "ssh-ng://builder1" { m.speedFactor = 10 }
                return m
            }
            return FleetBuilder(scheduler: Scheduler(machines: machines, stateDirectory: state, failedBuilders: failed, warn: { _ in }),
                                opener: opener, destinationURI: try StoreURI(parsing: f.clientStoreURI), lookup: lookup,
                                cache: nil, options: FleetBuilder.Options(maxJobs: 0, temporaryDirectory: f.work.path))
        }

        func verifyClient() throws -> TestSupport.Output {
            try TestSupport.run(["nix-store", "--store", f.clientStoreURI, "--verify", "--check-contents"], check: false)
        }
    }

    func run(_ env: Env, _ drv: String, silenceOn trigger: @escaping @Sendable (BuildEvent) -> Bool) async throws -> (BuildEvents, [String], Duration) {
        let events = BuildEvents()
        let proxy = env.proxy
        let builder = try env.builder()
        let start = ContinuousClock.now
        let built = try await builder.build([try DerivedPath(parsing: drv, in: .default)]) { e in
            events.add(e)
            if trigger(e) { proxy.goSilent() }
        }
        return (events, built.flatMap(\.paths).map(StoreDirectory.default.print), ContinuousClock.now - start)
    }

    @Test func linkSilentDuringOutputCopyBack() async throws {
        let env = try Env()
        defer { env.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let drv = try env.f.instantiate(env.f.expression(name: "big-\(tag)", script: "/bin/head -c 8388608 /dev/zero > $out"))
        let (events, outs, took) = try await run(env, drv) {
            if case let .copyingOutput(_, from, _) = $0 { from == "ssh-ng://builder1" } else { false }
        }
        #expect(events.building.map(\.1) == ["ssh-ng://builder1", "ssh-ng://builder2"])
        #expect(events.disabled == ["ssh-ng://builder1"])
        #expect(env.failed.remembered("ssh-ng://builder1")?.phase == "NarFromPath (no data moved)")
        #expect(outs.count == 1)
        #expect(took < .seconds(30), "\(took)")
        let v = try env.verifyClient()
        #expect(v.status == 0 && !v.stderr.contains("corrupt") && !v.stderr.contains("modified"), "\(v.stderr)")
    }

    @Test func linkSilentDuringInputUpload() async throws {
        let env = try Env()
        defer { env.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        // A 1 MiB source the client store holds and the builder lacks.
        let input = "builtins.toFile \"input-\(tag)\" (builtins.concatStringsSep \"\" (builtins.genList (x: \"0123456789abcdef\") 65536))"
        let top = env.f.expression(name: "top-\(tag)", script: "/bin/wc -c < ${dep} > $out")
        let drv = try env.f.instantiate("let dep = \(input); in \(top)")
        let (events, outs, took) = try await run(env, drv) {
            // Announced before the inputs go (`uploading` follows each one that went).
            if case let .copyingPaths(n, _) = $0 { n > 0 } else { false }
        }
        #expect(!events.uploads.contains { $0.hasSuffix("to ssh-ng://builder1") }, "the upload never completed")
        #expect(events.disabled == ["ssh-ng://builder1"])
        let reasons = events.all.compactMap { if case let .machineDisabled(_, r) = $0 { r } else { nil } }
        #expect(reasons.first?.contains("builder 'ssh-ng://builder1': timed out after 2 s during AddToStoreNar") == true, "\(reasons)")
        #expect(events.building.map(\.1).last == "ssh-ng://builder2")
        let out = try #require(outs.first)
        #expect(try String(contentsOfFile: env.f.clientRoot + out, encoding: .utf8) == "1048576\n")
        #expect(took < .seconds(30), "\(took)")
        #expect(!env.f.builderHas(1, out), "nothing built on the silent builder")
    }

    /// The builder's session killed while its output is copied back: the build moves to the
    /// other builder and the client store holds only the checked output.
    @Test(.disabled("races: the copy-back can end before the kill reaches it, and then nothing fails over"))
    func builderKilledDuringOutputCopyBack() async throws {
        let env = try Env()
        defer { env.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let drv = try env.f.instantiate(env.f.expression(name: "killed-\(tag)", script: "/bin/head -c 8388608 /dev/zero > $out"))
        let sshd = env.f.sshdPIDs[0]
        let events = BuildEvents()
        let built = try await env.builder().build([try DerivedPath(parsing: drv, in: .default)]) { e in
            events.add(e)
            if case let .copyingOutput(_, from, _) = e, from == "ssh-ng://builder1" { ProcessTree.killDescendants(of: sshd) }
        }
        #expect(events.building.map(\.1) == ["ssh-ng://builder1", "ssh-ng://builder2"])
        #expect(events.disabled == ["ssh-ng://builder1"])
        #expect(env.failed.remembered("ssh-ng://builder1") == nil, "a closed connection is not a timeout: not remembered")
        let out = StoreDirectory.default.print(try #require(built.first?.paths.first))
        let v = try env.verifyClient()
        #expect(v.status == 0 && !v.stderr.contains("corrupt") && !v.stderr.contains("modified"), "\(v.stderr)")
        #expect(env.f.clientHas(out))
    }
}
