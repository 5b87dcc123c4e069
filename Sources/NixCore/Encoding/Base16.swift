/// Lower-case hexadecimal, as Nix prints it (and accepts upper case when parsing).
public enum Base16 {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ string: some StringProtocol) throws(EncodingError) -> [UInt8] {
        let chars = Array(string.utf8)
        guard chars.count % 2 == 0 else {
            throw .badLength(encoding: "base16", input: String(string), expected: chars.count + 1)
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]) else {
                throw .badCharacter(encoding: "base16", input: String(string), character: Character(Unicode.Scalar(chars[i])))
            }
            guard let lo = value(chars[i + 1]) else {
                throw .badCharacter(encoding: "base16", input: String(string), character: Character(Unicode.Scalar(chars[i + 1])))
            }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
