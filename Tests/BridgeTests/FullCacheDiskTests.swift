import Foundation
import NarInfoCache
import NixCore
import NixSigning
import Testing
import TestSupport
@testable import Bridge
@testable import NixStore

/// The narinfo cache's disk fills while the cache is open (a long-running service): the
/// lookup answers as before, each failed write is a warning naming the file (said once a
/// minute, not per lookup), and what was cached before is still answered from the cache.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class FullCacheDiskTests {
    let env: SubstitutionScenario
    let disk: SmallDisk

    init() throws {
        env = try SubstitutionScenario(label: "cache-full", fixture: try StoreFixture.make(count: 4, seed: 81, namePrefix: "cache-full"))
        disk = try SmallDisk(bytes: 1 << 20, on: env.work.appendingPathComponent("cache-disk"))
    }

    deinit {
        disk.unmount()
        env.stop()
    }

    @Test func aFullDiskUnderAnOpenCacheIsAWarningNamingTheFile() async throws {
        let file = disk.directory.appendingPathComponent("narinfo.sqlite").path
        let cache = try NarInfoCache(path: file)
        let sources = try [0, 1].map { try env.opener.store(try StoreURI(parsing: env.fleet.builders[$0].storeURI)) }
        let keys = try TrustedKeys(parsing: [env.key1, env.key2].map(\.publicKey).joined(separator: " "))
        var lookup = Lookup(stores: sources, trustedKeys: keys, cache: cache)
        let warnings = Lines()
        lookup.warnOnCacheWriteFailures { warnings.add($0) }
        let paths = env.fixture.items.map(\.path)

        let before = await lookup.lookup([paths[0]])
        #expect(before.answers.allSatisfy { $0.best != nil })
        #expect(warnings.all.isEmpty)
        try disk.fill()
        #expect(disk.available < 8192, "\(disk.available) bytes left")

        let full = await lookup.lookup(Array(paths[1...]))
        #expect(full.failures.isEmpty)
        #expect(full.answers.count == 3 && full.answers.allSatisfy { $0.best != nil }, "the answers stand")
        let again = await lookup.lookup([paths[2]])
        #expect(again.answers.first?.best != nil)
        #expect(warnings.all.count == 1, "said once: \(warnings.all)")
        let warning = try #require(warnings.all.first)
        #expect(warning.hasPrefix("warning: answers are not cached: ") && warning.contains("(in '\(file)')"), "\(warning)")
        #expect(warning.contains("database or disk is full") || warning.contains("disk I/O error"), "\(warning)")

        let cached = await lookup.lookup([paths[0]])
        #expect(cached.answers.first?.locations.allSatisfy(\.fromCache) == true, "cached before the disk filled")
        for s in sources { await s.close() }
    }
}

final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ line: String) { lock.withLock { list.append(line) } }
    var all: [String] { lock.withLock { list } }
}
