import Foundation
import NixCore

/// A derivation output keyed by the derivation's hash modulo, `sha256:<hex>!out` (the form
/// before the `realisation-with-path-not-hash` feature).
public struct DrvOutput: Sendable, Hashable, CustomStringConvertible {
    /// `sha256:<base16>`.
    public var drvHash: String
    public var outputName: String

    public init(drvHash: String, outputName: String) {
        self.drvHash = drvHash
        self.outputName = outputName
    }

    public init(parsing s: String) throws(WireError) {
        guard let bang = s.lastIndex(of: "!"), s[..<bang].contains(":") else {
            throw .badValue(reading: "derivation output id", detail: "'\(s)' is not of the form 'algo:hash!output'")
        }
        self.init(drvHash: String(s[..<bang]), outputName: String(s[s.index(after: bang)...]))
    }

    public var description: String { drvHash + "!" + outputName }

    /// Nix's dummy id for peers that only look at the output name (all-zero SHA-256).
    static func dummy(_ outputName: String) -> DrvOutput {
        DrvOutput(drvHash: "sha256:" + String(repeating: "0", count: 64), outputName: outputName)
    }
}

/// A built output in the older form: sent as a JSON text. Fields that were absent stay nil
/// so the text re-encodes exactly (Nix's compat form has only `id` and `outPath`).
public struct Realisation: Sendable, Hashable {
    public enum SignatureStyle: Sendable, Hashable {
        /// `["key:sig", ...]` (Nix 2.8).
        case strings
        /// `[{"keyName": ..., "sig": ...}]` (newer Nix).
        case objects
    }

    public var id: DrvOutput
    public var outPath: StorePath
    /// `key:base64` signatures; nil when the JSON had none.
    public var signatures: [String]?
    /// Other realisations this one depends on, by id; nil when the JSON had none.
    public var dependentRealisations: [String: StorePath]?
    public var signatureStyle: SignatureStyle

    public init(id: DrvOutput, outPath: StorePath, signatures: [String]? = [],
                dependentRealisations: [String: StorePath]? = [:], signatureStyle: SignatureStyle = .strings) {
        self.id = id
        self.outPath = outPath
        self.signatures = signatures
        self.dependentRealisations = dependentRealisations
        self.signatureStyle = signatureStyle
    }

    /// Compact JSON with sorted keys, byte for byte as nlohmann's `dump()`.
    public var json: String {
        var fields: [String] = []
        if let deps = dependentRealisations {
            let items = WireWriter.sortedByBytes(deps.keys).map { JSONText.string($0) + ":" + JSONText.string(deps[$0]!.baseName) }
            fields.append("\"dependentRealisations\":{" + items.joined(separator: ",") + "}")
        }
        fields.append("\"id\":" + JSONText.string(id.description))
        fields.append("\"outPath\":" + JSONText.string(outPath.baseName))
        if let sigs = signatures {
            let items = sigs.map { s -> String in
                switch signatureStyle {
                case .strings: return JSONText.string(s)
                case .objects:
                    let colon = s.firstIndex(of: ":") ?? s.endIndex
                    let sig = colon < s.endIndex ? String(s[s.index(after: colon)...]) : ""
                    return "{\"keyName\":" + JSONText.string(String(s[..<colon])) + ",\"sig\":" + JSONText.string(sig) + "}"
                }
            }
            fields.append("\"signatures\":[" + items.joined(separator: ",") + "]")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    public init(json text: String) throws(WireError) {
        func bad(_ d: String) -> WireError { .badValue(reading: "realisation", detail: d) }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw bad("not a JSON object: \(text.prefix(200))")
        }
        guard let idText = obj["id"] as? String, let outText = obj["outPath"] as? String else {
            throw bad("missing 'id' or 'outPath'")
        }
        let id = try DrvOutput(parsing: idText)
        let out: StorePath
        do { out = try StorePath(baseName: outText) } catch { throw bad(error.description) }
        var sigs: [String]? = nil
        var style = SignatureStyle.strings
        if let list = obj["signatures"] as? [Any] {
            var s: [String] = []
            for item in list {
                if let str = item as? String {
                    s.append(str)
                } else if let o = item as? [String: Any], let k = o["keyName"] as? String, let v = o["sig"] as? String {
                    style = .objects
                    s.append(k + ":" + v)
                } else {
                    throw bad("bad signature entry")
                }
            }
            sigs = s
        }
        var deps: [String: StorePath]? = nil
        if let d = obj["dependentRealisations"] as? [String: Any] {
            var m: [String: StorePath] = [:]
            for (k, v) in d {
                guard let vs = v as? String, let p = try? StorePath(baseName: vs) else { throw bad("bad dependent realisation \(k)") }
                m[k] = p
            }
            deps = m
        }
        self.init(id: id, outPath: out, signatures: sigs, dependentRealisations: deps, signatureStyle: style)
    }

    public func write(to w: inout WireWriter) { w.writeString(json) }

    public static func read(from r: inout WireReader) throws(WireError) -> Realisation {
        try Realisation(json: try r.readString("realisation"))
    }
}

/// A derivation output named by the derivation's path (with `realisation-with-path-not-hash`).
public struct DrvOutputPath: Sendable, Hashable {
    public var drvPath: StorePath
    public var outputName: String

    public init(drvPath: StorePath, outputName: String) {
        self.drvPath = drvPath
        self.outputName = outputName
    }

    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        w.writeStorePath(drvPath, ctx)
        w.writeString(outputName)
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> DrvOutputPath {
        DrvOutputPath(drvPath: try r.readStorePath("drvPath", ctx), outputName: try r.readString("output name"))
    }
}

/// An output path with its signatures (the value half of a realisation).
public struct UnkeyedRealisation: Sendable, Hashable {
    public var outPath: StorePath
    public var signatures: Set<String>

    public init(outPath: StorePath, signatures: Set<String> = []) {
        self.outPath = outPath
        self.signatures = signatures
    }

    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        w.writeStorePath(outPath, ctx)
        w.writeStringSet(signatures)
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> UnkeyedRealisation {
        UnkeyedRealisation(outPath: try r.readStorePath("outPath", ctx), signatures: Set(try r.readStrings("signatures")))
    }
}

/// A realisation keyed by derivation path (with `realisation-with-path-not-hash`).
public struct KeyedRealisation: Sendable, Hashable {
    public var id: DrvOutputPath
    public var value: UnkeyedRealisation

    public init(id: DrvOutputPath, value: UnkeyedRealisation) {
        self.id = id
        self.value = value
    }

    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        id.write(to: &w, ctx)
        value.write(to: &w, ctx)
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> KeyedRealisation {
        KeyedRealisation(id: try DrvOutputPath.read(from: &r, ctx), value: try UnkeyedRealisation.read(from: &r, ctx))
    }
}

/// JSON string literals as nlohmann writes them (UTF-8 kept, controls escaped).
enum JSONText {
    static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
