/// Standard base64 with padding, parsed the way Nix's `base64Decode` does: newlines are
/// skipped, decoding stops at the first `=`, any other character outside the alphabet fails.
public enum Base64 {
    private static let alphabet: [UInt8] =
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let valueOf: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = Int8(i) }
        return t
    }()

    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let b = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((b.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < b.count {
            let n = Int(b[i]) << 16 | Int(b[i + 1]) << 8 | Int(b[i + 2])
            out += [alphabet[n >> 18 & 63], alphabet[n >> 12 & 63], alphabet[n >> 6 & 63], alphabet[n & 63]]
            i += 3
        }
        let rest = b.count - i
        if rest == 1 {
            let n = Int(b[i]) << 16
            out += [alphabet[n >> 18 & 63], alphabet[n >> 12 & 63], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = Int(b[i]) << 16 | Int(b[i + 1]) << 8
            out += [alphabet[n >> 18 & 63], alphabet[n >> 12 & 63], alphabet[n >> 6 & 63], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ string: some StringProtocol) throws(EncodingError) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(string.utf8.count * 3 / 4)
        var acc = 0, bits = 0
        for c in string.utf8 {
            if c == UInt8(ascii: "\n") { continue }
            if c == UInt8(ascii: "=") { break }
            let v = valueOf[Int(c)]
            guard v >= 0 else {
                throw .badCharacter(encoding: "base64", input: String(string), character: Character(Unicode.Scalar(c)))
            }
            acc = (acc << 6 | Int(v)) & 0xffffff
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> bits))
            }
        }
        return out
    }
}
