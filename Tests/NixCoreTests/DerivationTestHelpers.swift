import Foundation
import NixCore
import TestSupport

/// Reading upstream's derivation JSON (format version 4) and the real store's `.drv` files.
enum DerivationTestHelpers {
    struct BadJSON: Error, CustomStringConvertible {
        var message: String
        var description: String { "bad derivation JSON: \(message)" }
    }

    static func readJSON(_ url: URL) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url), options: [.fragmentsAllowed])
    }

    static func bytes(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

    static func storePath(_ base: Any?) throws -> StorePath {
        guard let s = base as? String else { throw BadJSON(message: "store path is not a string") }
        return try StorePath(baseName: s)
    }

    static func method(_ s: Any?) throws -> ContentAddressMethod {
        guard let s = s as? String, let m = ContentAddressMethod(rawValue: s) else { throw BadJSON(message: "bad method") }
        return m
    }

    /// One output in upstream's JSON form.
    static func output(_ json: Any) throws -> DerivationOutput {
        guard let o = json as? [String: Any] else { throw BadJSON(message: "output is not an object") }
        if o.isEmpty { return .deferred }
        if let p = o["path"] { return .inputAddressed(try storePath(p)) }
        if let h = o["hash"] as? String {
            return .caFixed(method: try method(o["method"]), hash: try Hash(parsing: h))
        }
        guard let a = o["hashAlgo"] as? String, let algo = HashAlgorithm(name: a) else { throw BadJSON(message: "no hashAlgo") }
        if o["impure"] as? Bool == true { return .impure(method: try method(o["method"]), algorithm: algo) }
        return .caFloating(method: try method(o["method"]), algorithm: algo)
    }

    static func inputNode(_ json: Any) throws -> InputDrvOutputs {
        guard let o = json as? [String: Any], let outs = o["outputs"] as? [String] else { throw BadJSON(message: "bad input node") }
        var node = InputDrvOutputs(Set(outs))
        for (k, v) in (o["dynamicOutputs"] as? [String: Any]) ?? [:] { node.dynamicOutputs[k] = try inputNode(v) }
        return node
    }

    /// A whole derivation in upstream's JSON form.
    static func derivation(_ json: Any) throws -> Derivation {
        guard let o = json as? [String: Any], o["version"] as? Int == 4 else { throw BadJSON(message: "not version 4") }
        let inputs = o["inputs"] as? [String: Any] ?? [:]
        var drv = Derivation(name: o["name"] as? String ?? "", outputs: [:], system: o["system"] as? String ?? "",
                             builder: o["builder"] as? String ?? "", args: o["args"] as? [String] ?? [],
                             env: o["env"] as? [String: String] ?? [:])
        for (k, v) in o["outputs"] as? [String: Any] ?? [:] { drv.outputs[k] = try output(v) }
        for (k, v) in inputs["drvs"] as? [String: Any] ?? [:] { drv.inputDrvs[try StorePath(baseName: k)] = try inputNode(v) }
        for s in inputs["srcs"] as? [String] ?? [] { drv.inputSrcs.insert(try StorePath(baseName: s)) }
        return drv
    }

    /// Reads and parses a `.drv` from a real store.
    static func readStoreDerivation(_ path: StorePath, dir: StoreDirectory = .default) throws -> Derivation {
        let data = try bytes(URL(fileURLWithPath: dir.print(path)))
        return try Derivation(parsing: data, name: Derivation.name(fromDrvPath: path), storeDirectory: dir)
    }

    /// A hasher that reads input derivations from the real store.
    static func storeHasher() -> DerivationHasher {
        DerivationHasher { try readStoreDerivation($0) }
    }
}
