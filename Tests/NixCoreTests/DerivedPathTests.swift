import Foundation
import NixCore
import Testing
import TestSupport

/// Derived paths (`drv^out`, `drv!out`) against upstream's JSON vectors and the strings in
/// the worker-protocol DerivedPath vectors.
@Suite(.tags(.upstreamVectors), .enabled(if: TestSupport.vectorSuitesRun, "needs the upstream vectors folder"))
struct DerivedPathTests {
    var data: URL { get throws { try TestSupport.requireVectors("libstore-tests/data") } }
    let store = StoreDirectory.default
    typealias H = DerivationTestHelpers

    static func single(_ json: Any) throws -> SingleDerivedPath {
        if let s = json as? String { return .opaque(try StorePath(baseName: s)) }
        guard let o = json as? [String: Any], let out = o["output"] as? String, let d = o["drvPath"] else {
            throw H.BadJSON(message: "bad single derived path")
        }
        return .built(drvPath: try single(d), output: out)
    }

    static func derived(_ json: Any) throws -> DerivedPath {
        if let s = json as? String { return .opaque(try StorePath(baseName: s)) }
        guard let o = json as? [String: Any], let outs = o["outputs"] as? [String], let d = o["drvPath"] else {
            throw H.BadJSON(message: "bad derived path")
        }
        return .built(drvPath: try single(d), outputs: outs == ["*"] ? .all : .names(Set(outs)))
    }

    static let drv = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv"

    @Test(arguments: [
        ("single_opaque", drv),
        ("single_built", drv + "^bar"),
        ("single_built_built", drv + "^bar^baz"),
    ])
    func singleVectors(file: String, rendered: String) throws {
        let value = try Self.single(H.readJSON(try data.appendingPathComponent("derived-path/\(file).json")))
        #expect(value.render(in: store) == rendered)
        #expect(try SingleDerivedPath(parsing: rendered, in: store) == value)
        let legacy = rendered.replacingOccurrences(of: "^", with: "!")
        #expect(value.render(in: store, separator: .legacy) == legacy)
        #expect(try SingleDerivedPath(parsing: legacy, in: store, separator: .legacy) == value)
    }

    @Test(arguments: [
        ("multi_opaque", drv),
        ("mutli_built", drv + "^bar,baz"),
        ("multi_built_built", drv + "^bar^baz,quux"),
        ("multi_built_built_wildcard", drv + "^bar^*"),
    ])
    func multiVectors(file: String, rendered: String) throws {
        let value = try Self.derived(H.readJSON(try data.appendingPathComponent("derived-path/\(file).json")))
        #expect(value.render(in: store) == rendered)
        #expect(try DerivedPath(parsing: rendered, in: store) == value)
    }

    /// The strings of a worker-protocol vector: one value after another, each a
    /// little-endian 64-bit length then the bytes padded to 8.
    func wireStrings(_ file: String) throws -> [String] {
        let b = try H.bytes(try data.appendingPathComponent("worker-protocol/\(file)"))
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
        var pos = 0, res: [String] = []
        while pos + 8 <= b.count {
            let n = u64(pos)
            try #require(n < 4096 && pos + 8 + n <= b.count, "bad length in \(file)")
            res.append(String(decoding: b[pos + 8..<pos + 8 + n], as: UTF8.self))
            pos += 8 + (n + 7) / 8 * 8
        }
        #expect(pos == b.count)
        return res
    }

    @Test(arguments: [29, 30])
    func workerProtocolStrings(minor: Int) throws {
        let json = try #require(try H.readJSON(try data.appendingPathComponent("worker-protocol/derived-path-1.\(minor).json")) as? [Any])
        let values = try json.map(Self.derived)
        let strings = try wireStrings("derived-path-1.\(minor).bin")
        #expect(try values.map { try $0.wireString(in: store, protocolMinor: minor) } == strings)
        #expect(try strings.map { try DerivedPath(wireString: $0, in: store, protocolMinor: minor) } == values)
    }

    @Test func oldProtocolsCannotAskForDerivationFiles() throws {
        let p = DerivedPath.opaque(try store.parse(Self.drv))
        #expect(throws: DerivedPathError.tooOldForDerivationFile(Self.drv, protocolMinor: 29)) {
            try p.wireString(in: store, protocolMinor: 29)
        }
        #expect(try p.wireString(in: store, protocolMinor: 30) == Self.drv)
        let nested = try DerivedPath(parsing: Self.drv + "^a^b", in: store)
        #expect(throws: DerivedPathError.self) { try nested.wireString(in: store, protocolMinor: 29) }
    }

    @Test func badDerivedPathsAreRefused() throws {
        #expect(throws: DerivedPathError.self) { try DerivedPath(parsing: Self.drv + "^", in: store) }
        #expect(throws: DerivedPathError.self) { try DerivedPath(parsing: Self.drv + "^a,,b", in: store) }
        #expect(throws: DerivedPathError.self) { try DerivedPath(parsing: Self.drv + "^a b", in: store) }
        #expect(throws: DerivedPathError.self) { try DerivedPath(parsing: "/tmp/x.drv^out", in: store) }
        let notDrv = "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo^out"
        #expect(throws: DerivedPathError.notADerivation(notDrv)) { try DerivedPath(parsing: notDrv, in: store) }
        // The `!` form is not a separator for the `^` parser: it lands in the store path name.
        #expect(throws: DerivedPathError.self) { try DerivedPath(parsing: Self.drv + "!out", in: store) }
        let deep = Self.drv + String(repeating: "^o", count: 40)
        #expect(throws: DerivedPathError.tooDeep(deep)) { try DerivedPath(parsing: deep, in: store) }
        do { _ = try DerivedPath(parsing: Self.drv + "^a b", in: store) } catch {
            #expect(error.description == "invalid derived path '\(Self.drv)^a b': invalid output name 'a b'")
        }
    }

    @Test func outputsAreSortedWhenRendered() throws {
        let p = try DerivedPath(parsing: Self.drv + "^out,dev,bin", in: store)
        #expect(p.render(in: store) == Self.drv + "^bin,dev,out")
        #expect(p.render(in: store, separator: .legacy) == Self.drv + "!bin,dev,out")
        #expect(try DerivedPath(parsing: Self.drv, in: store) == .opaque(try store.parse(Self.drv)))
    }
}
