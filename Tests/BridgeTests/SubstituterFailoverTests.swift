import Foundation
import NixCore
import NixSigning
import NixTransport
import Testing
import TestSupport
@testable import Bridge
@testable import NixStore

/// A 64 MiB path on two real builders: a builder killed mid-NAR, the only source killed,
/// and the NAR kept on disk (not in memory) on its way through.
@Suite(.serialized, .enabled(if: TestSupport.hasNix && SSHFleet.canRun, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class SubstituterFailoverTests {
    let env: TwoBuilderSubstitution
    var fleet: SSHFleet { env.fleet }
    var work: URL { env.work }
    var key1: SigningKey { env.key1 }
    var key2: SigningKey { env.key2 }
    var large: StoreFixture { env.fixture }
    var destURI: String { env.destURI }
    var stagedFiles: [String] { env.stagedFiles }

    init() throws {
        env = try TwoBuilderSubstitution(label: "failover",
                                         fixture: try StoreFixture.large(mebibytes: 64, name: "failover-large", seed: 31))
    }

    deinit { env.stop() }

    func substituter(builders: [Int]) throws -> Substituter { try env.substituter(builders: builders) }

    /// Kills builder1's session (children of its sshd) once its NAR starts to flow, and
    /// slows builder1's stream so the kill lands mid-NAR.
    func killingBuilder1(_ log: EventLog) -> @Sendable (Substituter.Event) -> Void {
        let fleet = self.fleet
        let once = KillOnce()
        return { event in
            log.add(event)
            if case let .received(_, from, _) = event, from == "ssh-ng://builder1" {
                once.run { ProcessTree.killDescendants(of: fleet.sshdPIDs[0]) }
                usleep(2_000)
            }
        }
    }

    @Test func builderKilledMidNARFallsOverToTheOther() async throws {
        let path = try #require(large.roots.first)
        let log = EventLog()
        let fetched = try await substituter(builders: [0, 1]).substitute([path], events: killingBuilder1(log))
        #expect(fetched == [path])
        #expect(log.failures.contains { $0.hasPrefix("ssh-ng://builder1") }, "builder1 was cut off mid-NAR")
        #expect(log.received(from: "ssh-ng://builder1") < UInt64(64 << 20), "the kill landed mid-NAR")
        let info = try #require(try pathInfos().first)
        #expect((info["signatures"] as? [String] ?? []).contains { $0.hasPrefix("builder2-1:") })
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(!verify.stderr.contains("corrupt") && !verify.stderr.contains("modified"), "\(verify.stderr)")
        #expect(stagedFiles.isEmpty, "no staged NAR left behind")
    }

    @Test func onlySourceKilledRegistersNothingAndNamesTheBuilder() async throws {
        let path = try #require(large.roots.first)
        let log = EventLog()
        do {
            _ = try await substituter(builders: [0]).substitute([path], events: killingBuilder1(log))
            Issue.record("substitution survived the only source's death")
        } catch {
            #expect("\(error)".contains("ssh-ng://builder1"), "\(error)")
        }
        #expect(try pathInfos().isEmpty)
        #expect(stagedFiles.isEmpty, "no staged NAR left behind")
    }

    /// The NAR goes to disk as it arrives (each progress step finds it in the staged file),
    /// and into the destination in frames with a bounded send queue: memory does not grow
    /// with the NAR's size.
    @Test func aLargeNARIsStagedOnDiskAndStreamedInBoundedFrames() async throws {
        let path = try #require(large.roots.first)
        let s = try substituter(builders: [0])
        let work = self.work
        let onDisk = ByteCounts()
        _ = try await s.substitute([path]) { event in
            guard case let .received(_, _, bytes) = event else { return }
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: work.path)) ?? []).filter { $0.hasPrefix("nix-bridge-nar-") }
            let size = files.compactMap { try? FileManager.default.attributesOfItem(atPath: work.path + "/" + $0)[.size] as? UInt64 }.max() ?? 0
            onDisk.add(reported: bytes, onDisk: size)
        }
        let steps = onDisk.all
        #expect(steps.count >= 60, "about one progress event per MiB of the 64 MiB NAR")
        #expect(steps.allSatisfy { $0.onDisk >= $0.reported }, "every byte received is already in the staged file")
        let conn = try await s.destination.connection()
        let peak = await conn.peakQueued
        #expect(peak > 0 && peak <= DaemonConnection.maxBuffered + (2 << 20), "peak send queue \(peak) bytes for a 64 MiB NAR")
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    func pathInfos() throws -> [[String: Any]] {
        let out = try TestSupport.nix(["path-info", "--json", "--sigs", "--all", "--store", destURI], check: false)
        return (try? JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]]) ?? []
    }
}

extension EventLog {
    /// The most NAR bytes reported received from `store`.
    func received(from store: String) -> UInt64 {
        events.compactMap { if case let .received(_, from, bytes) = $0, from == store { return bytes } else { return nil } }.max() ?? 0
    }
}

final class KillOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func run(_ body: () -> Void) {
        let first = lock.withLock { () -> Bool in defer { done = true }; return !done }
        if first { body() }
    }
}

final class ByteCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [(reported: UInt64, onDisk: UInt64)] = []
    func add(reported: UInt64, onDisk: UInt64) { lock.withLock { list.append((reported, onDisk)) } }
    var all: [(reported: UInt64, onDisk: UInt64)] { lock.withLock { list } }
}
