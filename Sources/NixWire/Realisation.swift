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
            let items = WireWriter.sortedByBytes(deps.keys).map { JSONValue.quoted($0) + ":" + JSONValue.quoted(deps[$0]!.baseName) }
            fields.append("\"dependentRealisations\":{" + items.joined(separator: ",") + "}")
        }
        fields.append("\"id\":" + JSONValue.quoted(id.description))
        fields.append("\"outPath\":" + JSONValue.quoted(outPath.baseName))
        if let sigs = signatures {
            let items = sigs.map { s -> String in
                switch signatureStyle {
                case .strings: return JSONValue.quoted(s)
                case .objects:
                    let colon = s.firstIndex(of: ":") ?? s.endIndex
                    let sig = colon < s.endIndex ? String(s[s.index(after: colon)...]) : ""
                    return "{\"keyName\":" + JSONValue.quoted(String(s[..<colon])) + ",\"sig\":" + JSONValue.quoted(sig) + "}"
                }
            }
            fields.append("\"signatures\":[" + items.joined(separator: ",") + "]")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    public init(json text: String) throws(WireError) {
        func bad(_ d: String) -> WireError { .badValue(reading: "realisation", detail: d) }
        guard case let .object(obj)? = try? JSONValue(parsing: text) else {
            throw bad("not a JSON object: \(text.prefix(200))")
        }
        guard case let .string(idText)? = obj["id"], case let .string(outText)? = obj["outPath"] else {
            throw bad("missing 'id' or 'outPath'")
        }
        let id = try DrvOutput(parsing: idText)
        let out: StorePath
        do { out = try StorePath(baseName: outText) } catch { throw bad(error.description) }
        var sigs: [String]? = nil
        var style = SignatureStyle.strings
        if case let .array(list)? = obj["signatures"] {
            var s: [String] = []
            for item in list {
                if case let .string(str) = item {
                    s.append(str)
                } else if case let .object(o) = item, case let .string(k)? = o["keyName"], case let .string(v)? = o["sig"] {
                    style = .objects
                    s.append(k + ":" + v)
                } else {
                    throw bad("bad signature entry")
                }
            }
            sigs = s
        }
        var deps: [String: StorePath]? = nil
        if case let .object(d)? = obj["dependentRealisations"] {
            var m: [String: StorePath] = [:]
            for (k, v) in d {
                guard case let .string(vs) = v, let p = try? StorePath(baseName: vs) else { throw bad("bad dependent realisation \(k)") }
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
