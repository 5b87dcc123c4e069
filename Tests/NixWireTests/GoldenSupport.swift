import Foundation
import NixCore
import NixWire
import Testing
import TestSupport

/// Reads upstream's golden files and turns their JSON into our values.
enum Golden {
    static func folder(_ dir: String) throws -> URL { try TestSupport.requireVectors("libstore-tests/data/" + dir) }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func bin(_ dir: String, _ stem: String) throws -> [UInt8] {
        let url = try folder(dir).appendingPathComponent(stem + ".bin")
        return [UInt8](try Data(contentsOf: url))
    }

    static func json(_ dir: String, _ stem: String) throws -> Any {
        let url = try folder(dir).appendingPathComponent(stem + ".json")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url), options: [.fragmentsAllowed])
    }

    static func ctx(_ minor: Int, features: Set<String> = []) -> WireContext {
        WireContext(version: WorkerProtocolVersion(minor: minor, features: features))
    }

    static let withPath: Set<String> = [WorkerProtocolVersion.featureRealisationWithPath]

    /// Decodes `expected.count` values from `bytes`, checks they equal `expected` and that the
    /// file ends there, then encodes them back and checks the bytes are identical.
    static func check<T: Equatable>(_ bytes: [UInt8], _ expected: [T], _ ctx: WireContext,
                                    read: (inout WireReader) throws -> T,
                                    write: (T, inout WireWriter) throws -> Void,
                                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        var r = WireReader(bytes)
        var got: [T] = []
        for _ in expected { got.append(try read(&r)) }
        #expect(got == expected, sourceLocation: sourceLocation)
        #expect(r.isAtEnd, "\(r.unreadCount) bytes left over", sourceLocation: sourceLocation)
        var w = WireWriter()
        for v in got { try write(v, &w) }
        #expect(w.bytes == bytes, "re-encoding differs", sourceLocation: sourceLocation)
    }

    // MARK: JSON -> values

    static func array(_ j: Any) throws -> [Any] {
        guard let a = j as? [Any] else { throw Failure(description: "expected a JSON array, got \(j)") }
        return a
    }

    static func object(_ j: Any) throws -> [String: Any] {
        guard let o = j as? [String: Any] else { throw Failure(description: "expected a JSON object, got \(j)") }
        return o
    }

    static func string(_ j: Any?) throws -> String {
        guard let s = j as? String else { throw Failure(description: "expected a JSON string, got \(String(describing: j))") }
        return s
    }

    static func int(_ j: Any?) throws -> Int64 {
        guard let n = j as? NSNumber else { throw Failure(description: "expected a number, got \(String(describing: j))") }
        return n.int64Value
    }

    static func bool(_ j: Any?) -> Bool { (j as? NSNumber)?.boolValue ?? false }

    static func storePath(_ j: Any?) throws -> StorePath { try StorePath(baseName: try string(j)) }

    static func optionalStorePath(_ j: Any?) throws -> StorePath? {
        j == nil || j is NSNull ? nil : try storePath(j)
    }

    static func contentAddress(_ j: Any) throws -> ContentAddress {
        let o = try object(j)
        let hash = try Hash(parsing: try string(o["hash"]))
        switch try string(o["method"]) {
        case "text": return .text(hash)
        case "flat": return .fixed(.flat, hash)
        case "nar": return .fixed(.recursive, hash)
        case let m: throw Failure(description: "unsupported content-address method \(m)")
        }
    }

    static func optionalContentAddress(_ j: Any?) throws -> ContentAddress? {
        j == nil || j is NSNull ? nil : try contentAddress(j!)
    }

    /// Signatures in either JSON form, as `key:sig` strings.
    static func signatures(_ j: Any?) throws -> [String] {
        guard let j else { return [] }
        return try array(j).map { item in
            if let s = item as? String { return s }
            let o = try object(item)
            return try string(o["keyName"]) + ":" + string(o["sig"])
        }
    }

    static func derivedPath(_ j: Any) throws -> DerivedPath {
        if j is String { return .opaque(try storePath(j)) }
        let o = try object(j)
        let outs = try array(o["outputs"] as Any).map { try string($0) }
        return .built(drvPath: .opaque(try storePath(o["drvPath"])), outputs: outs == ["*"] ? .all : .names(Set(outs)))
    }

    static func realisation(_ j: Any) throws -> Realisation {
        let o = try object(j)
        var deps: [String: StorePath] = [:]
        for (k, v) in try object(o["dependentRealisations"] ?? [String: Any]()) { deps[k] = try storePath(v) }
        let objects = (o["signatures"] as? [Any])?.first is [String: Any]
        return Realisation(id: try DrvOutput(parsing: try string(o["id"])), outPath: try storePath(o["outPath"]),
                           signatures: try signatures(o["signatures"]), dependentRealisations: deps,
                           signatureStyle: objects ? .objects : .strings)
    }

    static func unkeyedRealisation(_ j: Any) throws -> UnkeyedRealisation {
        let o = try object(j)
        return UnkeyedRealisation(outPath: try storePath(o["outPath"]), signatures: Set(try signatures(o["signatures"])))
    }

    static func drvOutputPath(_ j: Any) throws -> DrvOutputPath {
        let o = try object(j)
        return DrvOutputPath(drvPath: try storePath(o["drvPath"]), outputName: try string(o["outputName"]))
    }

    /// A BuildResult as the wire at `ctx` carries it: realisations in JSON form between 1.28
    /// and 1.37 (Nix's compat form when the JSON has no id), none before 1.28.
    static func buildResult(_ j: Any, _ ctx: WireContext) throws -> BuildResult {
        let o = try object(j)
        let name = try string(o["status"])
        guard let status = BuildStatus.allCases.first(where: { $0.name == name }) else {
            throw Failure(description: "unknown status \(name)")
        }
        var res = BuildResult(status: status, errorMsg: (o["errorMsg"] as? String) ?? "",
                              timesBuilt: Int(try int(o["timesBuilt"] ?? 0)), isNonDeterministic: bool(o["isNonDeterministic"]),
                              startTime: try int(o["startTime"] ?? 0), stopTime: try int(o["stopTime"] ?? 0),
                              cpuUser: try o["cpuUser"].map(int), cpuSystem: try o["cpuSystem"].map(int))
        let v = ctx.version
        guard v.atLeast(28) || v.has(WorkerProtocolVersion.featureRealisationWithPath) else { return res }
        for (output, value) in try object(o["builtOutputs"] ?? [String: Any]()) {
            let vo = try object(value)
            let path = try storePath(vo["outPath"])
            var out = BuiltOutput(outPath: path, signatures: Set(try signatures(vo["signatures"])))
            if !v.has(WorkerProtocolVersion.featureRealisationWithPath) {
                out.realisation = vo["id"] != nil
                    ? try realisation(value)
                    : Realisation(id: DrvOutput(drvHash: "sha256:" + String(repeating: "0", count: 64), outputName: output),
                                  outPath: path, signatures: nil, dependentRealisations: nil)
            }
            res.builtOutputs[output] = out
        }
        return res
    }

    /// A path info; the unkeyed form's JSON has no path: `path` stands in.
    static func pathInfo(_ j: Any, path: StorePath? = nil) throws -> PathInfo {
        let o = try object(j)
        return PathInfo(path: try path ?? storePath(o["path"]),
                        deriver: try optionalStorePath(o["deriver"]), narHash: try Hash(parsing: try string(o["narHash"])),
                        references: Set(try array(o["references"] as Any).map(storePath)),
                        registrationTime: try int(o["registrationTime"]), narSize: UInt64(try int(o["narSize"])),
                        ultimate: bool(o["ultimate"]), sigs: Set(try signatures(o["signatures"])),
                        ca: try optionalContentAddress(o["ca"]))
    }
}
