/// A minimal JSON reader (a derivation's `__json` attribute, realisations on the wire): the
/// layers below the CLI have no Foundation. Numbers are kept as their text; nesting is bounded.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

public struct JSONError: Error, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public var description: String { "\(message) at byte \(offset)" }
}

extension JSONValue {
    /// Parses one JSON document.
    public init(parsing text: String) throws(JSONError) {
        var p = JSONParser(bytes: Array(text.utf8))
        self = try p.document()
    }

    /// `s` as a JSON string literal, as nlohmann's `dump()` writes it (UTF-8 kept, controls escaped).
    public static func quoted(_ s: String) -> String {
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

struct JSONParser {
    static let maxDepth = 128
    let bytes: [UInt8]
    var pos = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() throws(JSONError) -> JSONValue {
        let v = try value(depth: 0)
        skipSpace()
        guard pos == bytes.count else { throw JSONError(offset: pos, message: "unexpected data after JSON value") }
        return v
    }

    mutating func skipSpace() {
        while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    mutating func literal(_ word: String, _ v: JSONValue) throws(JSONError) -> JSONValue {
        guard bytes[pos...].starts(with: word.utf8) else { throw JSONError(offset: pos, message: "invalid literal") }
        pos += word.utf8.count
        return v
    }

    mutating func value(depth: Int) throws(JSONError) -> JSONValue {
        guard depth < JSONParser.maxDepth else { throw JSONError(offset: pos, message: "JSON nested too deeply") }
        skipSpace()
        guard pos < bytes.count else { throw JSONError(offset: pos, message: "unexpected end of JSON") }
        switch bytes[pos] {
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "["):
            pos += 1
            var items: [JSONValue] = []
            skipSpace()
            if pos < bytes.count && bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard pos < bytes.count else { throw JSONError(offset: pos, message: "unterminated array") }
                pos += 1
                if bytes[pos - 1] == UInt8(ascii: "]") { return .array(items) }
                guard bytes[pos - 1] == UInt8(ascii: ",") else { throw JSONError(offset: pos - 1, message: "expected ',' or ']'") }
            }
        case UInt8(ascii: "{"):
            pos += 1
            var members: [String: JSONValue] = [:]
            skipSpace()
            if pos < bytes.count && bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            while true {
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw JSONError(offset: pos, message: "expected a key") }
                let key = try string()
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw JSONError(offset: pos, message: "expected ':'") }
                pos += 1
                members[key] = try value(depth: depth + 1)
                skipSpace()
                guard pos < bytes.count else { throw JSONError(offset: pos, message: "unterminated object") }
                pos += 1
                if bytes[pos - 1] == UInt8(ascii: "}") { return .object(members) }
                guard bytes[pos - 1] == UInt8(ascii: ",") else { throw JSONError(offset: pos - 1, message: "expected ',' or '}'") }
            }
        default:
            let start = pos
            while pos < bytes.count, "+-0123456789.eE".utf8.contains(bytes[pos]) { pos += 1 }
            guard pos > start else { throw JSONError(offset: pos, message: "unexpected character") }
            return .number(String(decoding: bytes[start..<pos], as: UTF8.self))
        }
    }

    mutating func hex4() throws(JSONError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw JSONError(offset: pos, message: "truncated \\u escape") }
        var v: UInt32 = 0
        for c in bytes[pos..<pos + 4] {
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw JSONError(offset: pos, message: "bad \\u escape")
            }
            v = v << 4 | UInt32(d)
        }
        pos += 4
        return v
    }

    mutating func string() throws(JSONError) -> String {
        pos += 1 // opening quote
        var out = ""
        var run = pos
        while true {
            guard pos < bytes.count else { throw JSONError(offset: pos, message: "unterminated string") }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { break }
            guard c == UInt8(ascii: "\\") else { pos += 1; continue }
            out += String(decoding: bytes[run..<pos], as: UTF8.self)
            pos += 1
            guard pos < bytes.count else { throw JSONError(offset: pos, message: "unterminated string") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "n"): out += "\n"
            case UInt8(ascii: "t"): out += "\t"
            case UInt8(ascii: "r"): out += "\r"
            case UInt8(ascii: "b"): out += "\u{08}"
            case UInt8(ascii: "f"): out += "\u{0C}"
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out += String(UnicodeScalar(e))
            case UInt8(ascii: "u"):
                var v = try hex4()
                if (0xD800..<0xDC00).contains(v), bytes[pos...].starts(with: "\\u".utf8) {
                    pos += 2
                    let lo = try hex4()
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo &- 0xDC00)
                }
                guard let scalar = Unicode.Scalar(v) else { throw JSONError(offset: pos, message: "bad \\u escape") }
                out.unicodeScalars.append(scalar)
            default: throw JSONError(offset: pos - 1, message: "bad escape")
            }
            run = pos
        }
        out += String(decoding: bytes[run..<pos], as: UTF8.self)
        pos += 1
        return out
    }
}
