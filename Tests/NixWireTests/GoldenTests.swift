import Foundation
import NixCore
@testable import NixWire
import Testing
import TestSupport

/// Every upstream worker-protocol and common-protocol golden file: decoded at its version,
/// compared with its JSON, and re-encoded to the same bytes.
@Suite(.tags(.upstreamVectors), .enabled(if: TestSupport.vectorSuitesRun, "needs the upstream vectors (../shared/vectors/nix-upstream)"))
struct GoldenTests {
    static let worker = "worker-protocol"
    static let common = "common-protocol"

    /// The stems each test below covers, so a new upstream file cannot go unnoticed.
    static let covered: Set<String> = [
        "string", "store-path", "content-address", "optional-content-address", "optional-store-path", "set", "vector",
        "drv-output", "realisation", "realisation-with-deps", "build-mode", "optional-trusted-flag",
        "derived-path-1.29", "derived-path-1.30", "drv-output-realisation-with-path-not-hash",
        "unkeyed-realisation-realisation-with-path-not-hash", "realisation-realisation-with-path-not-hash",
        "build-result-1.27", "build-result-1.28", "build-result-1.29", "build-result-1.29-compat", "build-result-1.37",
        "build-result-realisation-with-path-not-hash", "keyed-build-result-1.29", "unkeyed-valid-path-info-1.15",
        "valid-path-info-1.15", "valid-path-info-1.16", "client-handshake-info_1_30", "client-handshake-info_1_33",
        "client-handshake-info_1_35", "handshake-to-client",
    ]

    @Test func everyFileIsCovered() throws {
        for dir in [Self.worker, Self.common] {
            let files = try FileManager.default.contentsOfDirectory(atPath: try Golden.folder(dir).path)
            let stems = Set(files.filter { $0.hasSuffix(".bin") }.map { String($0.dropLast(4)) })
            #expect(!stems.isEmpty)
            #expect(stems.subtracting(Self.covered).isEmpty, "not covered in \(dir): \(stems.subtracting(Self.covered))")
        }
    }

    @Test(arguments: [worker, common])
    func strings(dir: String) throws {
        let ctx = Golden.ctx(10)
        let expected = try Golden.array(Golden.json(dir, "string")).map { try Golden.string($0) }
        try Golden.check(try Golden.bin(dir, "string"), expected, ctx,
                         read: { try $0.readString("string") }, write: { $1.writeString($0) })
    }

    @Test(arguments: [worker, common])
    func storePaths(dir: String) throws {
        let ctx = Golden.ctx(10)
        let expected = try Golden.array(Golden.json(dir, "store-path")).map { try Golden.storePath($0) }
        try Golden.check(try Golden.bin(dir, "store-path"), expected, ctx,
                         read: { try $0.readStorePath("path", ctx) }, write: { $1.writeStorePath($0, ctx) })
        let optional = try Golden.array(Golden.json(dir, "optional-store-path")).map { try Golden.optionalStorePath($0) }
        try Golden.check(try Golden.bin(dir, "optional-store-path"), optional, ctx,
                         read: { try $0.readOptionalStorePath("path", ctx) }, write: { $1.writeOptionalStorePath($0, ctx) })
    }

    @Test(arguments: [worker, common])
    func contentAddresses(dir: String) throws {
        let ctx = Golden.ctx(10)
        let expected = try Golden.array(Golden.json(dir, "content-address")).map { try Golden.contentAddress($0) }
        try Golden.check(try Golden.bin(dir, "content-address"), expected, ctx,
                         read: { try ContentAddress.read(from: &$0) }, write: { $1.writeString($0.description) })
        let optional = try Golden.array(Golden.json(dir, "optional-content-address")).map { try Golden.optionalContentAddress($0) }
        try Golden.check(try Golden.bin(dir, "optional-content-address"), optional, ctx,
                         read: { try ContentAddress.readOptional(from: &$0) }, write: { $1.writeString($0?.description ?? "") })
    }

    /// `set` and `vector` hold lists of strings and one list of lists.
    @Test(arguments: [(worker, "set"), (worker, "vector"), (common, "set"), (common, "vector")])
    func collections(dir: String, stem: String) throws {
        indirect enum Nested: Equatable {
            case strings([String])
            case lists([[String]])
        }
        let expected: [Nested] = try Golden.array(Golden.json(dir, stem)).map { item in
            let a = try Golden.array(item)
            if let first = a.first, first is [Any] { return .lists(try a.map { try Golden.array($0).map { try Golden.string($0) } }) }
            return .strings(try a.map { try Golden.string($0) })
        }
        var shapes = expected.makeIterator()
        try Golden.check(try Golden.bin(dir, stem), expected, Golden.ctx(10), read: { r in
            switch shapes.next()! {
            case .strings: return .strings(try r.readStrings("strings"))
            case .lists: return .lists(try r.readList("lists") { (r: inout WireReader) throws(WireError) in try r.readStrings("inner") })
            }
        }, write: { v, w in
            switch v {
            case let .strings(s): stem == "set" ? w.writeStringSet(s) : w.writeStrings(s)
            case let .lists(l):
                w.writeU64(UInt64(l.count))
                for s in l { stem == "set" ? w.writeStringSet(s) : w.writeStrings(s) }
            }
        })
    }

    /// Realisations and derivation outputs in their pre-1.38-feature forms (strings and JSON texts).
    @Test(arguments: [worker, common])
    func legacyRealisations(dir: String) throws {
        let ctx = Golden.ctx(34)
        let ids = try Golden.array(Golden.json(dir, "drv-output")).map { try DrvOutput(parsing: try Golden.string($0)) }
        try Golden.check(try Golden.bin(dir, "drv-output"), ids, ctx,
                         read: { try DrvOutput(parsing: try $0.readString("id")) }, write: { $1.writeString($0.description) })
        for stem in ["realisation", "realisation-with-deps"] {
            let expected = try Golden.array(Golden.json(dir, stem)).map { try Golden.realisation($0) }
            try Golden.check(try Golden.bin(dir, stem), expected, ctx,
                             read: { try Realisation.read(from: &$0) }, write: { $0.write(to: &$1) })
        }
    }

    @Test func realisationsWithPath() throws {
        let ctx = Golden.ctx(38, features: Golden.withPath)
        let d = Self.worker
        let ids = try Golden.array(Golden.json(d, "drv-output-realisation-with-path-not-hash")).map { try Golden.drvOutputPath($0) }
        try Golden.check(try Golden.bin(d, "drv-output-realisation-with-path-not-hash"), ids, ctx,
                         read: { try DrvOutputPath.read(from: &$0, ctx) }, write: { $0.write(to: &$1, ctx) })
        let unkeyed = try Golden.unkeyedRealisation(Golden.json(d, "unkeyed-realisation-realisation-with-path-not-hash"))
        try Golden.check(try Golden.bin(d, "unkeyed-realisation-realisation-with-path-not-hash"), [unkeyed], ctx,
                         read: { try UnkeyedRealisation.read(from: &$0, ctx) }, write: { $0.write(to: &$1, ctx) })
        let o = try Golden.object(Golden.json(d, "realisation-realisation-with-path-not-hash"))
        let keyed = KeyedRealisation(id: try Golden.drvOutputPath(o["key"]!), value: try Golden.unkeyedRealisation(o["value"]!))
        try Golden.check(try Golden.bin(d, "realisation-realisation-with-path-not-hash"), [keyed], ctx,
                         read: { try KeyedRealisation.read(from: &$0, ctx) }, write: { $0.write(to: &$1, ctx) })
    }

    @Test func buildModeAndTrustedFlag() throws {
        let modes = try Golden.array(Golden.json(Self.worker, "build-mode")).map { BuildMode(rawValue: UInt64(try Golden.int($0)))! }
        try Golden.check(try Golden.bin(Self.worker, "build-mode"), modes, Golden.ctx(10),
                         read: { try BuildMode.read(from: &$0) }, write: { $0.write(to: &$1) })
        let flags: [TrustedFlag?] = try Golden.array(Golden.json(Self.worker, "optional-trusted-flag")).map {
            $0 is NSNull ? nil : (Golden.bool($0) ? .trusted : .notTrusted)
        }
        try Golden.check(try Golden.bin(Self.worker, "optional-trusted-flag"), flags, Golden.ctx(10),
                         read: { try TrustedFlag.read(from: &$0) }, write: { TrustedFlag.write($0, to: &$1) })
    }

    @Test(arguments: [("derived-path-1.29", 29), ("derived-path-1.30", 30)])
    func derivedPaths(stem: String, minor: Int) throws {
        let ctx = Golden.ctx(minor)
        let expected = try Golden.array(Golden.json(Self.worker, stem)).map { try Golden.derivedPath($0) }
        try Golden.check(try Golden.bin(Self.worker, stem), expected, ctx,
                         read: { try DerivedPath.read(from: &$0, ctx) }, write: { try $0.write(to: &$1, ctx) })
    }

    @Test(arguments: [
        ("build-result-1.27", 27, false), ("build-result-1.28", 28, false), ("build-result-1.29", 29, false),
        ("build-result-1.29-compat", 29, false), ("build-result-1.37", 37, false),
        ("build-result-realisation-with-path-not-hash", 38, true),
    ])
    func buildResults(stem: String, minor: Int, withPath: Bool) throws {
        let ctx = Golden.ctx(minor, features: withPath ? Golden.withPath : [])
        let expected = try Golden.array(Golden.json(Self.worker, stem)).map { try Golden.buildResult($0, ctx) }
        try Golden.check(try Golden.bin(Self.worker, stem), expected, ctx,
                         read: { try BuildResult.read(from: &$0, ctx) }, write: { $0.write(to: &$1, ctx) })
    }

    @Test func keyedBuildResults() throws {
        let ctx = Golden.ctx(29)
        let expected = try Golden.array(Golden.json(Self.worker, "keyed-build-result-1.29")).map {
            KeyedBuildResult(path: try Golden.derivedPath(try Golden.object($0)["path"]!), result: try Golden.buildResult($0, ctx))
        }
        try Golden.check(try Golden.bin(Self.worker, "keyed-build-result-1.29"), expected, ctx,
                         read: { try KeyedBuildResult.read(from: &$0, ctx) }, write: { try $0.write(to: &$1, ctx) })
    }

    @Test(arguments: [("unkeyed-valid-path-info-1.15", 15), ("valid-path-info-1.15", 15), ("valid-path-info-1.16", 16)])
    func pathInfos(stem: String, minor: Int) throws {
        let ctx = Golden.ctx(minor)
        let json = try Golden.array(Golden.json(Self.worker, stem))
        if stem.hasPrefix("unkeyed") {
            let path = try StorePath(baseName: "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo")
            let expected = try json.map { try Golden.pathInfo($0, path: path) }
            try Golden.check(try Golden.bin(Self.worker, stem), expected, ctx,
                             read: { try PathInfo.readUnkeyed(path: path, from: &$0, ctx) }, write: { $0.writeUnkeyed(to: &$1, ctx) })
        } else {
            let expected = try json.map { try Golden.pathInfo($0) }
            try Golden.check(try Golden.bin(Self.worker, stem), expected, ctx,
                             read: { try PathInfo.read(from: &$0, ctx) }, write: { $0.write(to: &$1, ctx) })
        }
    }

    @Test func clientHandshakeInfo() throws {
        let d = Self.worker
        try Golden.check(try Golden.bin(d, "client-handshake-info_1_33"),
                         [ClientHandshakeInfo(daemonNixVersion: "foo"), ClientHandshakeInfo(daemonNixVersion: "bar")], Golden.ctx(33),
                         read: { try ClientHandshakeInfo.read(from: &$0, Golden.ctx(33)) }, write: { $0.write(to: &$1, Golden.ctx(33)) })
        try Golden.check(try Golden.bin(d, "client-handshake-info_1_35"),
                         [ClientHandshakeInfo(daemonNixVersion: "foo", remoteTrustsUs: .notTrusted),
                          ClientHandshakeInfo(daemonNixVersion: "bar", remoteTrustsUs: .trusted)], Golden.ctx(35),
                         read: { try ClientHandshakeInfo.read(from: &$0, Golden.ctx(35)) }, write: { $0.write(to: &$1, Golden.ctx(35)) })
        // Before 1.33 the info is empty on the wire.
        try Golden.check(try Golden.bin(d, "client-handshake-info_1_30"), [ClientHandshakeInfo()], Golden.ctx(30),
                         read: { try ClientHandshakeInfo.read(from: &$0, Golden.ctx(30)) }, write: { $0.write(to: &$1, Golden.ctx(30)) })
    }

    /// Upstream's daemon at 1.10 answering a client: our server writes the same bytes, and our
    /// client refuses that version with a typed error.
    @Test func handshakeToClient() throws {
        let bytes = try Golden.bin(Self.worker, "handshake-to-client")
        var server = ServerHandshake(ours: WorkerProtocolVersion(minor: 10), info: ClientHandshakeInfo())
        var r = WireReader()
        var w = WireWriter()
        w.writeU64(WorkerMagic.client)
        r.feed(w.bytes)
        #expect(try server.receive(from: &r) == [.write(bytes)])

        var client = ClientHandshake()
        _ = client.start()
        var cr = WireReader(bytes)
        #expect(throws: WireError.unsupportedVersion(peer: "1.10", negotiated: "1.10", minimum: "1.21")) { try client.receive(from: &cr) }
    }
}
