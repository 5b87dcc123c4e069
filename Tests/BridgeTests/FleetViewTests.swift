import Foundation
import NixCore
import NixSigning
import NixStore
import NixTransport
import Synchronization
import Testing
import TestSupport
@testable import Bridge

/// The fleet as one store of trusted paths, over two real builders: builder 1 (ranked first)
/// has its copies tampered with on disk after signing, so its NARs no longer match what it
/// signed; builder 2's are honest.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class FleetViewTests {
    let fleet: Fleet
    let work: URL
    let key1, key2, stranger: SigningKey
    /// On both builders; tampered on builder 1.
    let small: StoreFixture
    /// 4 MiB, on both builders; tampered on builder 1.
    let large: StoreFixture
    /// On both builders, untouched.
    let honest: StoreFixture
    /// On builder 2, signed by a key nobody trusts.
    let untrusted: StoreFixture
    let stores: [RemoteStore]

    init() throws {
        fleet = try Fleet(count: 2)
        work = try TestSupport.temporaryDirectory("nb-fleetview")
        key1 = try SigningKey.generate(name: "builder1-1", in: work)
        key2 = try SigningKey.generate(name: "builder2-1", in: work)
        stranger = try SigningKey.generate(name: "stranger-1", in: work)
        small = try StoreFixture.make(count: 1, seed: 71, namePrefix: "fv-small")
        large = try StoreFixture.large(mebibytes: 4, name: "fv-large", seed: 72)
        honest = try StoreFixture.make(count: 3, seed: 73, namePrefix: "fv-honest")
        untrusted = try StoreFixture.make(count: 1, seed: 74, namePrefix: "fv-untrusted")
        let all = StoreFixture.combined([small, large, honest])
        _ = try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[0].storeRoot), fixture: all, signWith: key1)
        let b2 = try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[1].storeRoot), fixture: all, signWith: key2)
        var b2stranger = FixtureStore(location: .chroot(root: URL(fileURLWithPath: fleet.builders[1].storeRoot)),
                                      key: stranger, infos: b2.infos)
        try b2stranger.add(untrusted)
        for p in small.paths + large.paths { try Self.tamper(fleet.builders[0].storeRoot, p) }
        var opener = StoreOpener()
        opener.sshConfig = try SSHConfig.load(path: fleet.sshConfig)
        stores = try fleet.builders.map { try opener.store(try StoreURI(parsing: $0.storeURI)) }
    }

    deinit {
        fleet.stop()
        try? FileManager.default.removeItem(at: work)
    }

    /// Builder 1 first (higher speed factor), both builders' keys trusted.
    func view(signingKeys: [SecretKey] = [], sigsNeeded: Int = 1) throws -> FleetView {
        let keys = try TrustedKeys(parsing: "\(key1.publicKey) \(key2.publicKey)")
        let lookup = Lookup(stores: stores, trustedKeys: keys, sigsNeeded: sigsNeeded,
                            speedFactors: ["ssh-ng://builder1": 2, "ssh-ng://builder2": 1])
        return FleetView(lookup: lookup, signingKeys: signingKeys)
    }

    /// Flips the first byte of the first regular file under a store path (same size: the
    /// NAR keeps its size, not its hash).
    static func tamper(_ storeRoot: String, _ path: StorePath) throws {
        let top = storeRoot + StoreDirectory.default.print(path)
        var file = top
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: top, isDirectory: &isDir), isDir.boolValue {
            let e = try #require(FileManager.default.enumerator(atPath: top))
            while let name = e.nextObject() as? String {
                let attrs = try FileManager.default.attributesOfItem(atPath: top + "/" + name)
                if attrs[.type] as? FileAttributeType == .typeRegular, (attrs[.size] as? Int ?? 0) > 0 {
                    file = top + "/" + name
                    break
                }
            }
        }
        var data = try Data(contentsOf: URL(fileURLWithPath: file))
        try #require(!data.isEmpty, "no non-empty file in \(top)")
        data[data.startIndex] ^= 0xff
        try data.write(to: URL(fileURLWithPath: file))
    }

    /// What `nix store dump-path` gives for builder n's (0-based) copy.
    func nar(_ path: StorePath, builder: Int) throws -> [UInt8] {
        let out = try TestSupport.nix(["store", "dump-path", "--store", "local?root=\(fleet.builders[builder].storeRoot)",
                                       StoreDirectory.default.print(path)])
        return [UInt8](out.stdout)
    }

    /// Collects what a NAR sink receives.
    final class Received: Sendable {
        let bytes = Mutex<[UInt8]>([])
        var all: [UInt8] { bytes.withLock { $0 } }
        var sink: @Sendable ([UInt8]) async throws -> Void { { b in self.bytes.withLock { $0 += b } } }
    }

    @Test func onlyTrustedPathsAreInTheView() async throws {
        let v = try view()
        let good = honest.paths[0], bad = untrusted.paths[0]
        let nowhere = try StorePath(baseName: "00000000000000000000000000000000-nowhere")
        let info = try #require(try await v.pathInfo(good))
        #expect(info.sigs.count == 1)
        #expect(info.sigs.first?.hasPrefix("builder1-1:") == true, "the best-ranked source's info")
        #expect(try await v.pathInfo(bad) == nil)
        #expect(try await v.pathInfo(nowhere) == nil)
        let infos = try await v.pathInfos(honest.paths + [bad, nowhere])
        #expect(Set(infos.keys) == Set(honest.paths))
        #expect(try await v.validPaths(honest.paths + [bad, nowhere]) == Set(honest.paths))
        // Two signatures needed: each copy has one, so nothing qualifies.
        #expect(try await self.view(sigsNeeded: 2).pathInfo(good) == nil)
    }

    @Test func ourSignatureIsAddedAndTheirsKept() async throws {
        let ours = try SecretKey.generate(name: "bridge-1")
        let info = try #require(try await view(signingKeys: [ours]).pathInfo(honest.paths[1]))
        #expect(info.sigs.count == 2)
        #expect(info.sigs.contains { $0.hasPrefix("builder1-1:") })
        let verdict = TrustedKeys([ours.publicKey]).verify(info)
        #expect(verdict.isTrusted, "\(verdict)")
    }

    @Test func pathFromHashPartAsksEveryBuilder() async throws {
        let v = try view()
        let p = honest.paths[2]
        #expect(try await v.path(hashPart: p.hashPart) == p)
        #expect(try await v.path(hashPart: untrusted.paths[0].hashPart) == nil, "held, but not trusted")
        #expect(try await v.path(hashPart: "00000000000000000000000000000000") == nil)
        // QueryAllValidPaths: what the view knows it holds, never a crawl of every builder.
        let trusted = Set(small.paths + large.paths + honest.paths)
        let known = try await v.allPaths()
        #expect(known.contains(p) && known.isSubset(of: trusted))
        _ = try await v.pathInfos(Array(trusted) + untrusted.paths)
        #expect(try await v.allPaths() == trusted)
    }

    @Test func honestNARStreamsAsTheBuilderDumpsIt() async throws {
        let p = honest.paths[0]
        let got = Received()
        try await view().narFromPath(p, into: got.sink)
        #expect(got.all == (try nar(p, builder: 0)))
    }

    /// A small wrong NAR is caught before a byte is passed on: the next source serves it.
    @Test func smallWrongNARFallsOverToTheNextSource() async throws {
        let p = small.paths[0]
        let got = Received()
        try await view().narFromPath(p, into: got.sink)
        let honestNAR = try nar(p, builder: 1)
        #expect(got.all == honestNAR)
        #expect(got.all != (try nar(p, builder: 0)), "builder 1's copy really is different")
    }

    /// A large wrong NAR has passed on bytes before the end: it fails, and the receiver never
    /// has all of it.
    @Test func largeWrongNARFailsBeforeItsLastChunk() async throws {
        let p = large.paths[0]
        let v = try view()
        let info = try #require(try await v.pathInfo(p))
        let got = Received()
        await #expect(throws: FleetView.NARError.self) { try await v.narFromPath(p, into: got.sink) }
        #expect(got.all.count > 0, "bytes were passed on while streaming")
        #expect(UInt64(got.all.count) < info.narSize, "never the whole (wrong) NAR")
        // The untrusted path has no NAR to give.
        await #expect(throws: FleetView.NARError.self) { try await v.narFromPath(self.untrusted.paths[0], into: got.sink) }
    }

    /// After the client asked about paths, their small NARs are fetched ahead: what is
    /// served from there is the builder's NAR, and a wrong one is never kept.
    @Test func prefetchedNARsAreCheckedToo() async throws {
        let v = try view()
        let wanted = honest.paths + small.paths
        #expect(try await Set(v.pathInfos(wanted).keys) == Set(wanted))
        // The first NAR request starts the prefetch of the others.
        let first = Received()
        try await v.narFromPath(honest.paths[0], into: first.sink)
        #expect(first.all == (try nar(honest.paths[0], builder: 0)))
        #expect(await v.prefetchedNARs.count >= 1)
        for p in honest.paths.dropFirst() {
            let got = Received()
            try await v.narFromPath(p, into: got.sink)
            #expect(got.all == (try nar(p, builder: 0)))
        }
        // Builder 1's copy of this one is wrong: the prefetch drops it, builder 2 serves it.
        let got = Received()
        try await v.narFromPath(small.paths[0], into: got.sink)
        #expect(got.all == (try nar(small.paths[0], builder: 1)))
    }
}
