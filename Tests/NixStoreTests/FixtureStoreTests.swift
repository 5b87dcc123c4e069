import Foundation
import NixCore
import Testing
import TestSupport

/// StoreFixture / ExportStream / FixtureStore against the real nix-store: what we write is
/// what Nix imports, registers, exports back, verifies and signs.
@Suite(.serialized, .tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct FixtureStoreTests {
    static func seconds(_ d: Duration) -> String {
        String(format: "%.3f s", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }

    /// Every fixture path is in the store with our narHash, narSize and references.
    static func expectRegistered(_ store: FixtureStore, signedBy key: SigningKey? = nil) throws {
        let found = try store.queryPathInfos()
        #expect(found.count == store.infos.count)
        for info in store.infos {
            let got = try #require(found[info.path], "\(info.path) missing from the store")
            #expect(got.narHash == info.narHash, "\(info.path)")
            #expect(got.narSize == info.narSize, "\(info.path)")
            #expect(got.references == info.references, "\(info.path)")
            #expect(got.deriver != nil && got.deriver == info.deriver, "\(info.path)")
            if let key { #expect(got.sigs.contains { $0.hasPrefix(key.name + ":") }, "\(info.path) unsigned") }
        }
    }

    @Test func sameSeedSameFixture() throws {
        let a = try StoreFixture.make(count: 300, seed: 42), b = try StoreFixture.make(count: 300, seed: 42)
        let c = try StoreFixture.make(count: 300, seed: 43)
        #expect(a.paths == b.paths)
        #expect(try a.pathInfos() == b.pathInfos())
        #expect(Set(a.paths).isDisjoint(with: c.paths))
        // A DAG in import order: references point back (or at the path itself).
        var seen = Set<StorePath>()
        for item in a.items {
            #expect(item.references.allSatisfy { seen.contains($0) || $0 == item.path })
            seen.insert(item.path)
        }
        #expect(a.items.contains { $0.references.contains($0.path) })
        #expect(a.items.contains { if case .directory = $0.content { return true } else { return false } })
        let closure = try StoreFixture.closure(size: 40, rootName: "my-root", seed: 42)
        #expect(closure.roots == [closure.items.last!.path])
        #expect(closure.items.last!.path.name == "my-root")
    }

    /// Our stream is byte for byte what `nix-store --export` writes for the same path.
    @Test func exportMatchesNixExport() throws {
        let dir = try FixtureStore.scratchDirectory("nb-fixture-export")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = try StoreFixture.make(count: 30, seed: 5)
        let store = try FixtureStore.create(at: dir.appendingPathComponent("store"), fixture: fixture)
        for item in fixture.items.prefix(12) {
            final class Bytes { var data = Data() }
            let ours = Bytes()
            try fixture.selecting([item.path]).writeExport { ours.data.append(contentsOf: $0) }
            let theirs = try store.nixStore(["--export", fixture.storeDirectory.print(item.path)]).stdout
            #expect(ours.data == theirs, "\(item.path)")
        }
    }

    /// A path whose reference is neither in the stream nor in the store is refused by Nix,
    /// and the error carries nix-store's message.
    @Test func missingReferenceFails() throws {
        let dir = try FixtureStore.scratchDirectory("nb-fixture-missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = try StoreFixture.closure(size: 10, seed: 12)
        let root = try #require(fixture.items.last)
        let missing = try #require(root.references.first { $0 != root.path })
        do {
            _ = try FixtureStore.create(at: dir.appendingPathComponent("store"), fixture: fixture.selecting([root.path]))
            Issue.record("import of a path with a missing reference succeeded")
        } catch let error as TestSupport.CommandFailed {
            #expect(error.output.stderr.contains(fixture.storeDirectory.print(missing)), "\(error)")
            #expect(error.command.contains("--import"))
        }
    }

    /// Import, registration, contents check and signatures for a DAG plus a closure.
    @Test func importsSignsAndVerifies() throws {
        let dir = try FixtureStore.scratchDirectory("nb-fixture-sign")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try SigningKey.generate(name: "fixture-test-1", in: dir)
        let other = try SigningKey.generate(name: "fixture-test-2", in: dir)
        let dag = try StoreFixture.make(count: 200, seed: 9)
        let closure = try StoreFixture.closure(size: 60, rootName: "fixture-root", seed: 9)
        var store = try FixtureStore.create(at: dir.appendingPathComponent("store"), fixture: dag, signWith: key)
        try store.add(closure)
        #expect(store.storeURI == "local?root=\(dir.path)/store")
        try Self.expectRegistered(store, signedBy: key)

        let check = try store.nixStore(["--verify", "--check-contents"], check: false)
        #expect(check.status == 0, "\(check.stderr)")
        #expect(!check.stderr.contains("error"), "\(check.stderr)")

        let verify = ["store", "verify", "--sigs-needed", "1", "--all"]
        let good = try store.nix(verify + ["--trusted-public-keys", key.publicKey], check: false)
        #expect(good.status == 0, "\(good.stderr)")
        let bad = try store.nix(verify + ["--trusted-public-keys", other.publicKey], check: false)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("untrusted"), "\(bad.stderr)")

        // The root's closure is exactly the closure fixture.
        let root = closure.storeDirectory.print(closure.roots[0])
        let requisites = try store.nixStore(["-qR", root]).text.split(separator: "\n").map(String.init)
        #expect(Set(requisites) == Set(closure.printedPaths))
    }

    /// `signAll` on a store imported without a key, then `nix store verify` accepts it.
    @Test func signAllAfterImport() throws {
        let dir = try FixtureStore.scratchDirectory("nb-fixture-signall")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try SigningKey.generate(name: "fixture-test-all", in: dir)
        let fixture = try StoreFixture.make(count: 50, seed: 11)
        let unsigned = try FixtureStore.create(at: dir.appendingPathComponent("store"), fixture: fixture)
        #expect(try unsigned.queryPathInfos().values.allSatisfy { $0.sigs.isEmpty })
        let args = ["store", "verify", "--sigs-needed", "1", "--no-contents", "--all", "--trusted-public-keys", key.publicKey]
        #expect(try unsigned.nix(args, check: false).status != 0)
        let signing = FixtureStore(location: unsigned.location, key: key, infos: unsigned.infos)
        try signing.signAll()
        try Self.expectRegistered(signing, signedBy: key)
        #expect(try signing.nix(args, check: false).status == 0)
    }

    @Test func tenThousandPaths() throws {
        let dir = try FixtureStore.scratchDirectory("nb-fixture-10k")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try SigningKey.generate(name: "fixture-test-10k", in: dir)
        let clock = ContinuousClock()
        let start = clock.now
        let fixture = try StoreFixture.make(count: 10_000, seed: 3)
        let store = try FixtureStore.create(at: dir.appendingPathComponent("store"), fixture: fixture, signWith: key)
        let elapsed = clock.now - start
        print("fixture: 10,000 paths generated+imported+signed in \(Self.seconds(elapsed))")
        #expect(store.infos.count == 10_000)
        let all = try PathInfoJSON.parse(store.nix(["path-info", "--json", "--sigs", "--all"]).stdout)
        #expect(all.count == 10_000)
        #expect(all.allSatisfy { $0.sigs.count == 1 })
        let verify = try store.nix(["store", "verify", "--sigs-needed", "1", "--no-contents", "--all",
                                    "--trusted-public-keys", key.publicKey], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    /// 200 MiB in one path, streamed into nix-store. (Memory is a benchmark's concern: other
    /// tests share this process, so its peak RSS says nothing here; it is only printed.)
    @Test func largePathImports() throws {
        let dir = try FixtureStore.scratchDirectory("nb-fixture-large")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try SigningKey.generate(name: "fixture-test-large", in: dir)
        let before = ProcessPipe.peakResidentBytes() ?? 0
        let clock = ContinuousClock()
        let start = clock.now
        let fixture = try StoreFixture.large(mebibytes: 200, seed: 4)
        let store = try FixtureStore.create(at: dir.appendingPathComponent("store"), fixture: fixture, signWith: key)
        let elapsed = clock.now - start
        let peak = try #require(ProcessPipe.peakResidentBytes())
        print("fixture: 200 MiB path generated+imported+signed in \(Self.seconds(elapsed)); VmHWM before \(before >> 20) MiB, after \(peak >> 20) MiB; nix-store peak RSS \(ProcessPipe.childrenPeakResidentBytes() >> 20) MiB")
        let info = try #require(store.infos.first)
        #expect(info.narSize > 200 << 20 && info.narSize < (200 << 20) + 1024)
        try Self.expectRegistered(store, signedBy: key)
        let check = try store.nixStore(["--verify", "--check-contents"], check: false)
        #expect(check.status == 0, "\(check.stderr)")
    }

    /// The system store: import, query, then delete again.
    @Test func systemStore() throws {
        let fixture = try StoreFixture.closure(size: 5, rootName: "nb-fixture-system", seed: UInt64.random(in: 0 ... .max))
        let store = try FixtureStore.system(fixture: fixture)
        #expect(store.storeURI == nil)
        try Self.expectRegistered(store)
        try TestSupport.run(["nix-store", "--delete"] + fixture.printedPaths)
        let gone = try TestSupport.run(["nix-store", "--check-validity", fixture.printedPaths[0]], check: false)
        #expect(gone.status != 0)
    }
}
