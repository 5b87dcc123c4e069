import Foundation
import NixCore
import Testing
import TestSupport
@testable import Bridge

/// The on-disk memory of builders that timed out: written whole, read by other processes'
/// instances, expired after its TTL, forgotten on success.
struct FailedBuildersTests {
    final class Clock: @unchecked Sendable {
        var now = Date(timeIntervalSince1970: 1_764_780_000)
    }

    @Test func aFailureIsRememberedUntilItsTTLAndThenForgotten() throws {
        let dir = try TestSupport.temporaryDirectory("nb-failed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clock = Clock()
        let failed = FailedBuilders(directory: dir.path + "/failed-builders", ttl: .seconds(60), now: { clock.now })
        #expect(failed.remembered("ssh-ng://b2") == nil)
        failed.record("ssh-ng://b2", phase: "worker handshake",
                      message: "builder 'ssh-ng://b2': timed out after 15 s during worker handshake\nsecond line")
        // Another process reads the same directory.
        let other = FailedBuilders(directory: dir.path + "/failed-builders", now: { clock.now })
        let f = try #require(other.remembered("ssh-ng://b2"))
        #expect(f.phase == "worker handshake" && f.message.hasSuffix("worker handshake second line"))
        #expect(f.retryAt.timeIntervalSince(f.failedAt) == 60)
        #expect(other.remembered("ssh-ng://b1") == nil)
        #expect(other.all().map(\.store) == ["ssh-ng://b2"])
        clock.now += 30
        #expect(f.summary(now: clock.now).contains("failed 30 s ago during worker handshake"))
        #expect(f.summary(now: clock.now).hasSuffix("tried again in 30 s"))
        let file = try String(contentsOfFile: dir.path + "/failed-builders/ssh-ng:__b2", encoding: .utf8)
        #expect(file.hasPrefix("store: ssh-ng://b2\nphase: worker handshake\nfailed-at: 1764780000\nretry-at: 1764780060\n"))
        clock.now += 31
        #expect(other.remembered("ssh-ng://b2") == nil, "expired")
        #expect(other.all().isEmpty)
        clock.now -= 31
        failed.forget("ssh-ng://b2")
        #expect(other.remembered("ssh-ng://b2") == nil, "forgotten")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/failed-builders").isEmpty, "no temporary files left")
    }

    @Test func theDirectoryIsBesideTheSlotLocks() {
        #expect(FailedBuilders.defaultDirectory(environment: ["NIX_BRIDGE_STATE_DIR": "/var/lib/nb"]) == "/var/lib/nb/failed-builders")
        #expect(FailedBuilders.directory(besideSlotLocks: "/x/current-load") == "/x/failed-builders")
    }
}

/// The scheduler (and so `explain` and `build`) declines a machine that timed out recently,
/// saying when it will be tried again, and takes it back once that time has passed.
struct SchedulerFailedBuilderTests {
    @Test func aRememberedFailureDisablesTheMachineUntilItsRetryTime() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-slots-failed").path + "/current-load"
        let machines = try MachinesFile.parse("ssh-ng://b1 x86_64-linux - 1 1 ; ssh://b2 x86_64-linux - 1 2",
                                              file: nil, localSystem: "x86_64-linux").machines
        let clock = FailedBuildersTests.Clock()
        let failed = FailedBuilders(directory: FailedBuilders.directory(besideSlotLocks: dir), ttl: .seconds(60), now: { clock.now })
        // An ssh:// machine is reached (and remembered) as ssh-ng://.
        #expect(Scheduler.failureKey(machines[1]) == "ssh-ng://b2")
        failed.record("ssh-ng://b2", phase: "SSH handshake", message: "builder 'ssh-ng://b2': timed out after 15 s during SSH handshake")
        let s = Scheduler(machines: machines, stateDirectory: dir, failedBuilders: failed, warn: { _ in })
        let needs = BuildNeeds(system: "x86_64-linux")
        let a = try s.assess(needs)
        #expect(a[1].decline?.kind == "disabled")
        #expect(a[1].decline?.description.contains("timed out after 15 s during SSH handshake") == true)
        #expect(a[1].decline?.description.contains("tried again in") == true)
        #expect(a[0].isPick, "the slower machine that answers is picked")
        clock.now += 61
        #expect(try s.assess(needs)[1].isPick, "tried again after the TTL (higher speed factor)")
    }
}
