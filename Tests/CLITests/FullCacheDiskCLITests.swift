import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge lookup` with its narinfo cache (SQLite) on a disk that is full: the answers
/// stand, the cache that cannot be used is a warning naming the file, and the exit status is
/// the one the answers give.
@Suite("nix-bridge with a full narinfo cache disk", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class FullCacheDiskCLITests {
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

    /// SQLite cannot even open the file then (WAL mode makes its `-shm` and `-wal` files
    /// anew): the lookup goes on uncached, with one warning naming the file.
    @Test func aFullDiskUnderTheCacheIsAWarningNamingTheFile() throws {
        let p = paths.printedPaths
        let first = try lookup([p[0]])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(!first.stderr.contains("warning"), "\(first.stderr)")
        try disk.fill()
        #expect(disk.available < 8192, "\(disk.available) bytes left")
        for asked in [[p[1], p[2]], [p[0]]] {
            let out = try lookup(asked)
            #expect(out.status == 0, "the answers stand: \(out.stderr)")
            #expect(out.text.components(separatedBy: "ssh-ng://builder1: signed by 'builder1-1', trusted\n").count == asked.count + 1, "\(out.text)")
            #expect(out.stderr.hasPrefix("warning: answers are not cached: executing SQLite statement"), "\(out.stderr)")
            #expect(out.stderr.contains("(in '\(cacheFile)')"), "the warning names the file: \(out.stderr)")
            #expect(out.stderr.components(separatedBy: "warning:").count == 2, "said once: \(out.stderr)")
        }
        // A missing path: status 1, as with a cache.
        let missing = try lookup([StoreDirectory.default.path + "/00000000000000000000000000000000-nowhere"])
        #expect(missing.status == 1, "\(missing.stderr)")
        #expect(missing.text.contains("not found on any store"), "\(missing.text)")
    }

    @Test func aCacheFileThatCannotBeCreatedOnAFullDisk() throws {
        try disk.fill()
        let file = disk.directory.appendingPathComponent("new/narinfo.sqlite").path
        let out = try lookup([paths.printedPaths[0]], cache: file)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.text.contains("ssh-ng://builder1: signed by 'builder1-1', trusted\n"), "\(out.text)")
        #expect(out.stderr.hasPrefix("warning: answers are not cached: ") && out.stderr.contains(file), "\(out.stderr)")
    }
}
