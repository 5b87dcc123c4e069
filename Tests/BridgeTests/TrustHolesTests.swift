import Foundation
import NixCore
import NixSigning
import NixStore
import NixWire
import Testing
import TestSupport
@testable import Bridge

/// Trust decisions that need no builder: cached verdicts checked again at every location,
/// peer-supplied reference graphs of any depth, writes refused to untrusted clients.
@Suite("Trust holes")
struct TrustHolesTests {
    static let key = try! SecretKey.generate(name: "trusted-1")

    static func info(_ n: Int, references: Set<StorePath> = []) -> PathInfo {
        let path = try! StoreDirectory.default.makeFixedOutputPath(name: "p\(n)", recursive: false,
                                                                   hash: HashSink.hash(.sha1, string: "\(n)"))
        return PathInfo(path: path, narHash: HashSink.hash(.sha256, string: "nar \(n)"), references: references, narSize: 100)
    }

    /// A location whose verdict claims what a forged cache row would: signed by `key`.
    static func cachedTrusted(_ store: String, _ info: PathInfo) -> PathLocation {
        var v = PathVerification(storePath: info.path, storeDir: .default, sigsNeeded: 1)
        v.verifiedBy = [key.publicKey]
        return PathLocation(store: store, info: info, verification: v, fromCache: true)
    }

    @Test func everyCachedLocationIsCheckedAgainIncludingFailover() throws {
        var genuine = Self.info(1)
        genuine.sigs = [try Self.key.sign(genuine).description]
        var forged = genuine
        forged.sigs = []
        let answer = LookupAnswer(path: genuine.path, locations: [
            Self.cachedTrusted("ssh-ng://a", genuine), Self.cachedTrusted("ssh-ng://b", forged),
        ])
        let lookup = Lookup(stores: [], trustedKeys: TrustedKeys([Self.key.publicKey]))
        let checked = Substituter(lookup: lookup, destination: try StoreOpener().store(try StoreURI(parsing: "local?root=/nonexistent")))
            .rechecked(answer)
        #expect(checked.locations[0].isTrusted)
        // The second source would be used if the first failed midway: it is no longer trusted.
        #expect(!checked.locations[1].isTrusted)
        #expect(checked.locations.filter(\.isTrusted).map(\.store) == ["ssh-ng://a"])
    }

    @Test func aDeepReferenceChainIsOrderedWithoutRecursion() {
        // Deeper than any call stack a recursive walk could use.
        let depth = 100_000
        var answers: [StorePath: LookupAnswer] = [:]
        var previous: StorePath?
        var chain: [StorePath] = []
        for n in 0..<depth {
            let info = Self.info(n, references: previous.map { [$0] } ?? [])
            answers[info.path] = LookupAnswer(path: info.path, locations: [Self.cachedTrusted("s", info)])
            chain.append(info.path)
            previous = info.path
        }
        let order = Substituter.referencesFirst(answers).map(\.path)
        #expect(order == chain)
    }

    @Test func referencesComeFirstInADiamondAndACycleEnds() {
        let d = Self.info(4)
        let b = Self.info(2, references: [d.path]), c = Self.info(3, references: [d.path])
        let a = Self.info(1, references: [b.path, c.path])
        // A cycle no real store has: x -> y -> x.
        let xPath = Self.info(10).path
        let y = Self.info(11, references: [xPath])
        let x = Self.info(10, references: [y.path])
        var answers: [StorePath: LookupAnswer] = [:]
        for i in [a, b, c, d, x, y] { answers[i.path] = LookupAnswer(path: i.path, locations: [Self.cachedTrusted("s", i)]) }
        let order = Substituter.referencesFirst(answers).map(\.path)
        #expect(order.count == 6)
        let at = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        #expect(at[d.path]! < at[b.path]! && at[d.path]! < at[c.path]! && at[b.path]! < at[a.path]! && at[c.path]! < at[a.path]!)
    }

    @Test func addSignaturesIsRefusedInNixsWordsEvenWithAWriteStore() async throws {
        let store = try StoreOpener().store(try StoreURI(parsing: "local?root=/nonexistent"))
        let view = FleetView(lookup: Lookup(stores: [], trustedKeys: TrustedKeys([Self.key.publicKey])))
        let backend = FleetStoreBackend(view: view, writeStore: store)
        let p = Self.info(1).path
        await #expect {
            try await backend.addSignatures(p, ["trusted-1:AAAA"])
        } throws: { error in
            (error as? DaemonError)?.message == "you are not privileged to add signatures"
        }
    }

    @Test func aStagedNARLeavesNothingInItsDirectory() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-staged")
        defer { try? FileManager.default.removeItem(at: dir) }
        let nar = try NARWriter.collect { try $0.file(executable: false, contents: Array("staged\n".utf8)) }
        let info = PathInfo(path: Self.info(1).path, narHash: HashSink.hash(.sha256, nar), narSize: UInt64(nar.count))
        let staged = try StagedCopy(directory: dir.path, path: Self.info(1).path, storeDir: .default, info: info)
        // Unlinked once open: a process killed now leaves nothing behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        try await staged.write(nar)
        try await staged.finish()
        var back: [UInt8] = []
        while let chunk = try staged.read(upTo: 5) { back += chunk }
        #expect(back == nar)
        staged.remove()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    /// A fixed-output derivation's output copied back from a builder is checked against the
    /// derivation's own hash, whatever CA (or none) the builder reports.
    @Test func aFixedOutputCopyIsCheckedAgainstTheDerivationsHash() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-staged-fod")
        defer { try? FileManager.default.removeItem(at: dir) }
        let expected = "the fetched file\n"
        let hash = HashSink.hash(.sha256, string: expected)
        let path = try StoreDirectory.default.makeFixedOutputPath(name: "fetched", recursive: false, hash: hash)
        for (contents, ok) in [(expected, true), ("what the builder made instead\n", false)] {
            let nar = try NARWriter.collect { try $0.file(executable: false, contents: Array(contents.utf8)) }
            // The builder's info matches its NAR and claims nothing.
            var info = PathInfo(path: path, narHash: HashSink.hash(.sha256, nar), narSize: UInt64(nar.count))
            info.ca = .fixed(.flat, hash) // what PathCopy sets from the derivation
            let staged = try StagedCopy(directory: dir.path, path: path, storeDir: .default, info: info)
            try await staged.write(nar)
            if ok {
                await #expect(throws: Never.self) { try await staged.finish() }
            } else {
                await #expect { try await staged.finish() } throws: { "\($0)".contains("ca hash mismatch importing path") }
            }
            staged.remove()
        }
        let drv = Derivation(name: "fetched", outputs: ["out": .caFixed(method: .flat, hash: hash)],
                             system: "x86_64-linux", builder: "builtin:fetchurl")
        let node = DerivationNode(drvPath: Self.info(9).path, drv: drv, outputPaths: ["out": path], wanted: ["out"])
        #expect(node.fixedOutputAddresses == [path: .fixed(.flat, hash)])
    }
}
