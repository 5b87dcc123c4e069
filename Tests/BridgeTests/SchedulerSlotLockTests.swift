import Bridge
import Foundation
import NixCore
import Synchronization
import Testing
import TestSupport

/// Slots are flock locks shared by every scheduler on a state directory, in this process or
/// another one (here the real `flock` CLI holds slots from a separate process).
@Suite(.serialized) struct SchedulerSlotLockTests {
    static let hasFlock = TestSupport.has("flock")

    static func machines(_ spec: String) throws -> [Machine] {
        try MachinesFile.parse(spec, file: nil, localSystem: "x86_64-linux").machines
    }

    @Test func slotFilesFollowNixNaming() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-slots").path + "/current-load"
        let m = try Self.machines("ssh-ng://root@b1?remote-store=local%3Froot%3D/x x86_64-linux - 3")
        let s = Scheduler(machines: m, stateDirectory: dir, warn: { _ in })
        let slot = try #require(try await s.acquire(BuildNeeds(system: "x86_64-linux")))
        let expected = SchedulerFixtures.slotLockPath(directory: dir, storeUri: m[0].storeUri, slot: 0)
        #expect(slot.lockPath == expected)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files == ["main-lock", "ssh-ng:__root@b1?remote-store=local%3Froot%3D_x-0",
                          "ssh-ng:__root@b1?remote-store=local%3Froot%3D_x-1",
                          "ssh-ng:__root@b1?remote-store=local%3Froot%3D_x-2"])
        // The lock is a real flock: another open of the file cannot take it.
        let probe = open(expected, O_RDWR)
        defer { close(probe) }
        #expect(flock(probe, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
        slot.release()
        #expect(!slot.isHeld)
        #expect(flock(probe, LOCK_EX | LOCK_NB) == 0)
    }

    @Test(.tags(.hostTools), .enabled(if: hasFlock, "needs the flock CLI (util-linux)"))
    func aLockHeldByAnotherProcessCountsAsLoad() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-slots").path + "/current-load"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let m = try Self.machines("ssh-ng://a x86_64-linux - 2 ; ssh-ng://b x86_64-linux - 1")
        let s = Scheduler(machines: m, stateDirectory: dir, pollInterval: .milliseconds(10), warn: { _ in })
        let needs = BuildNeeds(system: "x86_64-linux")
        // Another process holds a's slot 1 and b's only slot.
        let a1 = try SchedulerFixtures.HeldLock(path: SchedulerFixtures.slotLockPath(directory: dir, storeUri: "ssh-ng://a", slot: 1))
        let b0 = try SchedulerFixtures.HeldLock(path: SchedulerFixtures.slotLockPath(directory: dir, storeUri: "ssh-ng://b", slot: 0))
        let before = try s.assess(needs)
        #expect(before.map(\.load) == [1, 1])
        #expect(before[1].decline == .allSlotsBusy(load: 1, maxJobs: 1))
        #expect(before[0].isPick)
        let mine = try #require(try await s.acquire(needs))
        #expect(mine.machine.storeUri == "ssh-ng://a" && mine.number == 0)
        // Everything is busy now: acquire waits until the other process lets go of b.
        let waiter = Task { try await s.acquire(needs) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try s.assess(needs).allSatisfy { $0.decline?.kind == "allSlotsBusy" })
        b0.release()
        let got = try #require(try await waiter.value)
        #expect(got.machine.storeUri == "ssh-ng://b")
        a1.release()
        #expect(try s.assess(needs).map(\.load) == [1, 1])
        withExtendedLifetime((mine, got)) {}
    }

    @Test func cancellingAWaitingAcquireThrows() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-slots").path
        let s = Scheduler(machines: try Self.machines("ssh-ng://a x86_64-linux"), stateDirectory: dir,
                          pollInterval: .milliseconds(10), warn: { _ in })
        let needs = BuildNeeds(system: "x86_64-linux")
        let held = try #require(try await s.acquire(needs))
        let waits = WarningLog()
        let waiter = Task { try await s.acquire(needs, onWait: { waits.append("waiting") }) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(waits.lines == ["waiting"]) // once, however many looks
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        held.release()
    }

    /// Six schedulers (one per task, as separate processes would be) race for a machine with
    /// max-jobs 2 while another process holds one of its slots: at most one build at a time
    /// gets through; once that process ends, two.
    @Test(.tags(.hostTools), .enabled(if: hasFlock, "needs the flock CLI (util-linux)"))
    func maxJobsIsNeverExceeded() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-slots").path + "/current-load"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let m = try Self.machines("ssh-ng://a x86_64-linux - 2")
        let outside = try SchedulerFixtures.HeldLock(path: SchedulerFixtures.slotLockPath(directory: dir, storeUri: "ssh-ng://a", slot: 0))
        let whileHeld = try await Self.race(tasks: 6, machines: m, dir: dir)
        #expect(whileHeld.builds == 6)
        #expect(whileHeld.maxConcurrent == 1)
        #expect(whileHeld.slots == [1])
        outside.release()
        let free = try await Self.race(tasks: 6, machines: m, dir: dir)
        #expect(free.builds == 6)
        #expect(free.maxConcurrent == 2)
        #expect(free.slots == [0, 1])
    }

    final class RaceState: Sendable {
        let counts = Mutex((running: 0, max: 0, builds: 0, slots: Set<Int>()))
    }

    struct RaceResult { var builds: Int; var maxConcurrent: Int; var slots: Set<Int> }

    static func race(tasks: Int, machines: [Machine], dir: String) async throws -> RaceResult {
        let state = RaceState()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    let s = Scheduler(machines: machines, stateDirectory: dir, pollInterval: .milliseconds(5), warn: { _ in })
                    guard let slot = try await s.acquire(BuildNeeds(system: "x86_64-linux")) else { return }
                    state.counts.withLock {
                        $0.running += 1
                        $0.max = max($0.max, $0.running)
                        $0.builds += 1
                        $0.slots.insert(slot.number)
                    }
                    try await Task.sleep(for: .milliseconds(150))
                    state.counts.withLock { $0.running -= 1 }
                    slot.release()
                }
            }
            try await group.waitForAll()
        }
        return state.counts.withLock { RaceResult(builds: $0.builds, maxConcurrent: $0.max, slots: $0.slots) }
    }
}
