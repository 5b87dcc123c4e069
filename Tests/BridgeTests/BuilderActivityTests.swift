import Foundation
import Testing
import TestSupport
@testable import Bridge

/// The on-disk record of what each builder did: appended by any process, counted within its
/// window, compacted in place once large, never torn by concurrent writers.
struct BuilderActivityTests {
    typealias Clock = FailedBuildersTests.Clock

    @Test func eventsAreCountedWithinTheWindow() throws {
        let dir = try TestSupport.temporaryDirectory("nb-activity")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clock = Clock()
        let a = BuilderActivity(directory: dir.path + "/builder-activity", window: .seconds(3600), now: { clock.now })
        #expect(a.counts("ssh-ng://b1") == ActivityCounts())
        a.recordBuild("ssh-ng://b1")
        a.recordSubstitutions("ssh-ng://b1", narSizes: [100, 250])
        a.recordLookup("ssh-ng://b1", hits: 3, misses: 1)
        a.recordLookup("ssh-ng://b2", hits: 0, misses: 2)
        a.recordLookup("ssh-ng://b2", hits: 0, misses: 0)
        let file = try String(contentsOfFile: dir.path + "/builder-activity/ssh-ng:__b1", encoding: .utf8)
        #expect(file == "1764780000 build 1\n1764780000 substitution 2 350\n1764780000 lookup 3 1\n")
        clock.now += 1800
        a.recordSubstitution("ssh-ng://b1", narSize: 50)
        // Another process reads the same directory.
        let other = BuilderActivity(directory: dir.path + "/builder-activity", window: .seconds(3600), now: { clock.now })
        let b1 = other.counts("ssh-ng://b1")
        #expect(b1.builds == 1 && b1.substitutions == 3 && b1.narBytes == 400 && b1.cacheHits == 3 && b1.cacheMisses == 1)
        let total = other.total()
        #expect(total.cacheHits == 3 && total.cacheMisses == 3 && total.substitutions == 3)
        clock.now += 1801
        let later = other.counts("ssh-ng://b1")
        #expect(later.builds == 0 && later.substitutions == 1 && later.narBytes == 50, "only the last event is in the window")
        #expect(other.total().cacheMisses == 0)
    }

    @Test func aLargeFileIsCompactedInPlaceIntoHourlyTotals() throws {
        let dir = try TestSupport.temporaryDirectory("nb-activity-compact")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clock = Clock()
        let a = BuilderActivity(directory: dir.path, window: .seconds(7200), compactAt: 4096, now: { clock.now })
        // 400 events over 4000 s: the first hour falls out of the window, the rest is summed per hour.
        for i in 0..<400 {
            a.recordBuild("ssh-ng://b1")
            a.recordLookup("ssh-ng://b1", hits: 2, misses: 1)
            if i % 2 == 0 { a.recordSubstitution("ssh-ng://b1", narSize: 10) }
            clock.now += 10
        }
        let size = try FileManager.default.attributesOfItem(atPath: dir.path + "/ssh-ng:__b1")[.size] as? Int ?? 0
        #expect(size < 4096 + 100, "compacted: \(size) bytes")
        let exact = BuilderActivity(directory: dir.path, window: .seconds(7200), compactAt: 1 << 30, now: { clock.now })
        let c = exact.counts("ssh-ng://b1")
        // Within the last 7200 s (all 400 events), less what compaction dropped as out of the window: nothing.
        #expect(c.builds == 400 && c.cacheHits == 800 && c.cacheMisses == 400 && c.substitutions == 200 && c.narBytes == 2000, "\(c)")
        clock.now += 7200 - 1000
        // The hours wholly before the window are gone; an hour counts until its last event leaves.
        let later = exact.counts("ssh-ng://b1")
        #expect(later.builds > 0 && later.builds < 400, "\(later)")
        a.recordBuild("ssh-ng://b1")
        // Garbage lines are skipped.
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.path + "/ssh-ng:__b1"))
        h.seekToEndOfFile()
        let before = a.counts("ssh-ng://b1")
        h.write(Data("not a line\n\(Int(clock.now.timeIntervalSince1970)) substitution 1\n".utf8))
        try h.close()
        #expect(a.counts("ssh-ng://b1") == before)
    }

    @Test func concurrentWritersLoseNothing() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-activity-concurrent")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A small compaction threshold, so compactions run between the appends.
        let a = BuilderActivity(directory: dir.path, compactAt: 2048)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<100 { a.recordSubstitution("ssh-ng://b1", narSize: 7) } }
            }
        }
        let c = a.counts("ssh-ng://b1")
        #expect(c.substitutions == 800 && c.narBytes == 5600)
    }
}
