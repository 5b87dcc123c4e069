import Foundation
import NixCore
import NixSigning
import NixTransport
import Testing
import TestSupport
@testable import Bridge
@testable import NixStore

/// A 64 MiB path on two real builders, streamed in one pass: a builder killed mid-NAR, the
/// only source killed, a corrupted NAR (from one builder, from the only one), and the NAR
/// in the destination while it still arrives, with a bounded send queue.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class SubstituterFailoverTests {
    let env: SubstitutionScenario
    var fleet: Fleet { env.fleet }
    var work: URL { env.work }
    var key1: SigningKey { env.key1 }
    var key2: SigningKey { env.key2 }
    var large: StoreFixture { env.fixture }
    var destURI: String { env.destURI }
    var stagedFiles: [String] { env.stagedFiles }

    init() throws {
        env = try SubstitutionScenario(label: "failover",
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

    /// One pass: the destination daemon is already writing the path while the source is
    /// still sending it, nothing is staged on disk, and the send queue stays bounded.
    @Test func aLargeNARStreamsInOnePassInBoundedFrames() async throws {
        let path = try #require(large.roots.first)
        let s = try substituter(builders: [0])
        let target = env.destRoot.path + StoreDirectory.default.print(path)
        let seen = ByteCounts()
        _ = try await s.substitute([path]) { event in
            guard case let .received(_, _, bytes) = event else { return }
            seen.add(reported: bytes, onDisk: treeSize(target))
        }
        let steps = seen.all
        #expect(steps.count >= 60, "about one progress event per MiB of the 64 MiB NAR")
        #expect(steps.contains { $0.reported < UInt64(48 << 20) && $0.onDisk > 0 },
                "the destination was writing the path while the source still sent it")
        #expect(stagedFiles.isEmpty)
        let conn = try await s.destination.connection()
        let peak = await conn.peakQueued
        #expect(peak > 0 && peak <= DaemonConnection.maxBuffered + (2 << 20), "peak send queue \(peak) bytes for a 64 MiB NAR")
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    /// Flips the last byte of the large path's content on builder1: its NAR has the right
    /// size and shape, and only the hash of the whole tells.
    func corruptLastByteOnBuilder1() throws {
        let path = try #require(large.roots.first)
        let root = fleet.builders[0].storeRoot + StoreDirectory.default.print(path)
        let file = try #require(largestFile(under: root))
        chmod(file, 0o644)
        let h = try #require(FileHandle(forUpdatingAtPath: file))
        defer { try? h.close() }
        let end = try h.seekToEnd()
        try h.seek(toOffset: end - 1)
        let last = try #require(try h.read(upToCount: 1)?.first)
        try h.seek(toOffset: end - 1)
        try h.write(contentsOf: [last ^ 0xff])
    }

    @Test func aCorruptedLargeNARFallsOverAndRegistersOnlyTheGoodOne() async throws {
        try corruptLastByteOnBuilder1()
        let path = try #require(large.roots.first)
        let log = EventLog()
        let fetched = try await substituter(builders: [0, 1]).substitute([path]) { log.add($0) }
        #expect(fetched == [path])
        #expect(log.failures.contains { $0.hasPrefix("ssh-ng://builder1") && $0.contains("does not match") }, "\(log.failures)")
        #expect(log.received(from: "ssh-ng://builder1") >= UInt64(63 << 20),
                "builder1's whole NAR went through before the hash told")
        let info = try #require(try pathInfos().first)
        #expect((info["signatures"] as? [String] ?? []).contains { $0.hasPrefix("builder2-1:") })
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0 && !verify.stderr.contains("modified"), "\(verify.stderr)")
    }

    @Test func aCorruptedLargeNARFromTheOnlySourceRegistersNothing() async throws {
        try corruptLastByteOnBuilder1()
        let path = try #require(large.roots.first)
        do {
            _ = try await substituter(builders: [0]).substitute([path])
            Issue.record("a corrupted NAR was accepted")
        } catch {
            #expect("\(error)".contains("ssh-ng://builder1") && "\(error)".contains("does not match"), "\(error)")
        }
        #expect(try pathInfos().isEmpty)
        let valid = try TestSupport.run(["nix-store", "--store", destURI, "--check-validity", StoreDirectory.default.print(path)], check: false)
        #expect(valid.status != 0, "the path is not valid in the destination")
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

/// The biggest regular file at or under `path`.
func largestFile(under path: String) -> String? {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return nil }
    guard isDir.boolValue else { return path }
    let files = (fm.enumerator(atPath: path)?.allObjects as? [String] ?? []).map { path + "/" + $0 }
    return files.filter { fm.fileExists(atPath: $0, isDirectory: &isDir) && !isDir.boolValue }
        .max { treeSize($0) < treeSize($1) }
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
