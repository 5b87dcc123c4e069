/// Nix's base-32 encoding ("nix32"): its own alphabet (no e, o, u, t) and its own bit
/// order, which differs from RFC 4648. Used in store path hash parts and `sha256:` hashes.
public enum Nix32 {
    /// The 32 characters, in digit order.
    public static let alphabet: [UInt8] = Array("0123456789abcdfghijklmnpqrsvwxyz".utf8)

    private static let digitOf: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    /// Length of the encoding of `byteCount` bytes.
    public static func encodedLength(_ byteCount: Int) -> Int {
        byteCount == 0 ? 0 : (byteCount * 8 - 1) / 5 + 1
    }

    /// Encodes bytes. Nix prints the most significant 5-bit group first.
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let b = Array(bytes)
        let len = encodedLength(b.count)
        var out = [UInt8](repeating: 0, count: len)
        var pos = 0
        for n in stride(from: len - 1, through: 0, by: -1) {
            let bit = n * 5
            let i = bit / 8, j = bit % 8
            var c = Int(b[i]) >> j
            if i + 1 < b.count { c |= Int(b[i + 1]) << (8 - j) }
            out[pos] = alphabet[c & 0x1f]
            pos += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a nix32 string of exactly `encodedLength(byteCount)` characters.
    /// Rejects characters outside the alphabet and strings whose high bits overflow.
    public static func decode(_ string: some StringProtocol, byteCount: Int) throws(EncodingError) -> [UInt8] {
        let chars = Array(string.utf8)
        guard chars.count == encodedLength(byteCount) else {
            throw .badLength(encoding: "nix32", input: String(string), expected: encodedLength(byteCount))
        }
        var out = [UInt8](repeating: 0, count: byteCount)
        for n in 0..<chars.count {
            let c = chars[chars.count - n - 1]
            let digit = digitOf[Int(c)]
            guard digit >= 0 else {
                throw .badCharacter(encoding: "nix32", input: String(string), character: Character(Unicode.Scalar(c)))
            }
            let d = Int(digit)
            let bit = n * 5
            let i = bit / 8, j = bit % 8
            out[i] |= UInt8(truncatingIfNeeded: d << j)
            let carry = d >> (8 - j)
            if i + 1 < byteCount {
                out[i + 1] |= UInt8(truncatingIfNeeded: carry)
            } else if carry != 0 {
                throw .overflow(encoding: "nix32", input: String(string))
            }
        }
        return out
    }

    /// Decodes, inferring the byte count from the length (for lengths Nix uses).
    public static func decode(_ string: some StringProtocol) throws(EncodingError) -> [UInt8] {
        let n = string.utf8.count
        // Largest byte count whose encoding has this length.
        let bytes = n * 5 / 8
        guard bytes > 0, encodedLength(bytes) == n else {
            throw .badLength(encoding: "nix32", input: String(string), expected: encodedLength(max(bytes, 1)))
        }
        return try decode(string, byteCount: bytes)
    }

    /// True when every character is in the alphabet.
    public static func isValid(_ string: some StringProtocol) -> Bool {
        string.utf8.allSatisfy { digitOf[Int($0)] >= 0 }
    }
}
