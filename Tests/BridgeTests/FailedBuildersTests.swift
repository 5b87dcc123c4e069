import Foundation
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
