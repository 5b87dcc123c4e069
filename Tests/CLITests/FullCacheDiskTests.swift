import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge lookup` with its narinfo cache (SQLite) on a disk that is full: the answers
/// stand, the failed write is a warning naming the file, and the exit status is the one the
/// answers give.
@Suite("nix-bridge with a full narinfo cache disk", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class FullCacheDiskTests {
    let env: Fleet
    let key1: SigningKey
    let paths: StoreFixture
    let disk: SmallDisk

    init() throws {
        env = try Fleet(count: 1, label: "nb-cli-cache-disk")
        key1 = try SigningKey.generate(name: "builder1-1", in: env.work)
        paths = try StoreFixture.make(count: 3, seed: 71, namePrefix: "cache-disk")
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: paths, signWith: key1)
        disk = try SmallDisk(bytes: 1 << 20, on: env.work.appendingPathComponent("cache-disk"))
    }

    deinit { disk.unmount() }

    var cacheFile: String { disk.directory.appendingPathComponent("narinfo.sqlite").path }

    func lookup(_ paths: [String], cache: String? = nil) throws -> TestSupport.Output {
        try env.bridge(["lookup", "--builders", "ssh-ng://builder1 x86_64-linux - 1 1",
                        "--option", "trusted-public-keys", key1.publicKey,
                        "--narinfo-cache", cache ?? cacheFile] + paths)
    }

    @Test func aFullDiskUnderTheCacheIsAWarningNamingTheFile() throws {
        let p = paths.printedPaths
        let first = try lookup([p[0]])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(!first.stderr.contains("warning"), "\(first.stderr)")
        try disk.fill()
        #expect(disk.available < 8192, "\(disk.available) bytes left")
        let second = try lookup([p[1], p[2]])
        #expect(second.status == 0, "the answers stand: \(second.stderr)")
        #expect(second.text.contains("ssh-ng://builder1: signed by 'builder1-1', trusted\n"), "\(second.text)")
        #expect(second.stderr.contains("warning: answers are not cached: "), "\(second.stderr)")
        #expect(second.stderr.contains(cacheFile), "the warning names the file: \(second.stderr)")
        #expect(second.stderr.components(separatedBy: "warning: answers are not cached").count == 2, "said once: \(second.stderr)")
        // What was cached before the disk filled is still answered from the cache.
        let cached = try lookup([p[0]])
        #expect(cached.status == 0, "\(cached.stderr)")
        #expect(cached.text.contains("trusted (cached)"), "\(cached.text)")
        // A missing path: status 1, as without the warning.
        let missing = try lookup([StoreDirectory.default.path + "/00000000000000000000000000000000-nowhere"])
        #expect(missing.status == 1, "\(missing.stderr)")
    }

    @Test func aCacheFileThatCannotBeCreatedOnAFullDisk() throws {
        try disk.fill()
        let out = try lookup([paths.printedPaths[0]], cache: disk.directory.appendingPathComponent("new/narinfo.sqlite").path)
        print("status \(out.status)\nstdout \(out.text)\nstderr \(out.stderr)")
    }
}
