/// Base64 decoding straight into a fixed-size buffer, with Nix's `base64Decode` rules
/// (newlines skipped, stop at the first `=`, anything else outside the alphabet is an
/// error). Used for keys and, on the verify hot path, for signatures: no allocation.
enum KeyBase64 {
    enum Failure: Error, Equatable {
        case badCharacter(UInt8)
        /// Decoded length differs from the buffer's (`count` is what the text holds).
        case wrongLength(count: Int)
    }

    private static let valueOf: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            t[Int(c)] = Int8(i)
        }
        return t
    }()

    /// Decodes `text` into `out`, which it must fill exactly.
    static func decode(_ text: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableRawBufferPointer) -> Failure? {
        valueOf.withUnsafeBufferPointer { table in decode(text, into: out, table: table) }
    }

    private static func decode(_ text: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableRawBufferPointer,
                               table: UnsafeBufferPointer<Int8>) -> Failure? {
        var acc: UInt32 = 0, bits = 0, n = 0
        var overflow = 0
        for c in text {
            if c == UInt8(ascii: "\n") { continue }
            if c == UInt8(ascii: "=") { break }
            let v = table[Int(c)]
            if v < 0 { return .badCharacter(c) }
            acc = (acc << 6 | UInt32(v)) & 0xffffff
            bits += 6
            if bits >= 8 {
                bits -= 8
                if n < out.count {
                    out[n] = UInt8(truncatingIfNeeded: acc >> UInt32(bits))
                    n += 1
                } else {
                    overflow += 1
                }
            }
        }
        return n + overflow == out.count ? nil : .wrongLength(count: n + overflow)
    }

    /// Decodes a string's UTF-8 into a 32- or 64-byte value.
    static func decode32(_ text: Substring) -> Result<Bytes32, Failure> {
        var out = Bytes32()
        let failure = withUTF8(text) { t in out.withUnsafeMutableBytes { decode(t, into: $0) } }
        return failure.map { .failure($0) } ?? .success(out)
    }

    static func decode64(_ text: Substring) -> Result<Bytes64, Failure> {
        var out = Bytes64()
        let failure = withUTF8(text) { t in out.withUnsafeMutableBytes { decode(t, into: $0) } }
        return failure.map { .failure($0) } ?? .success(out)
    }

    /// The UTF-8 of a substring, without copying when it is contiguous (native strings are).
    @inline(__always)
    static func withUTF8<R>(_ s: Substring, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let r = s.utf8.withContiguousStorageIfAvailable(body) { return r }
        return Array(s.utf8).withUnsafeBufferPointer(body)
    }
}
