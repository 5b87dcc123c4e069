/// Number grammars of Nix's `string2Int` / `string2Float` (boost `lexical_cast`), shared by
/// nix.conf settings and the machines file.
enum NixNumber {
    /// An unsigned integer: optional `+`, then decimal digits, at most `max`.
    /// (Nix refuses a leading `-` for unsigned types before converting.)
    static func unsigned(_ s: some StringProtocol, max: UInt64) -> UInt64? {
        var digits = Substring(s)
        if digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        guard let n = UInt64(digits), n <= max else { return nil }
        return n
    }

    /// A signed integer: optional sign, then decimal digits, within `min...max`.
    static func signed(_ s: some StringProtocol, min: Int64, max: Int64) -> Int64? {
        var body = Substring(s)
        var negative = false
        if body.first == "+" || body.first == "-" { negative = body.first == "-"; body = body.dropFirst() }
        guard !body.isEmpty, body.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        guard let magnitude = UInt64(body) else { return nil }
        if negative {
            guard magnitude <= UInt64(-(min + 1)) + 1 else { return nil }
            return magnitude == 0 ? 0 : -Int64(magnitude - 1) - 1
        }
        guard magnitude <= UInt64(max) else { return nil }
        return Int64(magnitude)
    }

    /// A finite decimal number: `[+-]digits[.digits][e[+-]digits]` or `[+-].digits[...]`.
    static func decimal(_ s: some StringProtocol) -> Double? {
        let u = Array(s.utf8)
        var i = 0
        func digits() -> Int {
            let start = i
            while i < u.count, u[i] >= 48, u[i] <= 57 { i += 1 }
            return i - start
        }
        if i < u.count, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") { i += 1 }
        var mantissa = digits()
        if i < u.count, u[i] == UInt8(ascii: ".") { i += 1; mantissa += digits() }
        guard mantissa > 0 else { return nil }
        if i < u.count, u[i] == UInt8(ascii: "e") || u[i] == UInt8(ascii: "E") {
            i += 1
            if i < u.count, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return nil }
        }
        guard i == u.count, let d = Double(String(decoding: u, as: UTF8.self)), d.isFinite else { return nil }
        return d
    }
}
