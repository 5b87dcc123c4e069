/// Nix's `HashModuloSink`: hashes a stream with every occurrence of `modulus` (a store
/// path's hash part) replaced by zero bytes, then the position of each occurrence as
/// `|<pos>`. This is how Nix hashes a content-addressed path's contents, so that a path
/// that refers to itself can be checked against the hash in its address.
public final class HashModuloSink {
    private let hasher: HashSink
    private let from: [UInt8]
    /// The last `from.count - 1` bytes seen (already rewritten), which may begin a match.
    private var tail: [UInt8] = []
    /// Bytes passed on to the hasher so far.
    private var position: UInt64 = 0
    /// Where each occurrence began, in the whole stream.
    public private(set) var matches: [UInt64] = []

    public init(_ algorithm: HashAlgorithm, modulus: String) {
        hasher = HashSink(algorithm)
        from = Array(modulus.utf8)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        guard !from.isEmpty else {
            hasher.update(bytes)
            position += UInt64(bytes.count)
            return
        }
        // Only the tail is copied when the chunk holds no match and does not start one.
        var s = tail
        s.append(contentsOf: bytes)
        let n = from.count
        let first = from[0]
        let found: [Int] = s.withUnsafeMutableBufferPointer { buf in
            from.withUnsafeBufferPointer { pattern in
                var found: [Int] = []
                var j = 0
                while j + n <= buf.count {
                    guard buf[j] == first else {
                        j += 1
                        continue
                    }
                    var k = 1
                    while k < n && buf[j + k] == pattern[k] { k += 1 }
                    if k == n {
                        found.append(j)
                        for k in j..<j + n { buf[k] = 0 }
                        j += n
                    } else {
                        j += 1
                    }
                }
                return found
            }
        }
        for j in found { matches.append(position + UInt64(j)) }
        let keep = min(s.count, n - 1)
        let consumed = s.count - keep
        if consumed > 0 {
            s.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<consumed])) }
            position += UInt64(consumed)
        }
        tail = Array(s[consumed...])
    }

    public func update<C: ContiguousBytes>(_ bytes: C) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Finishes the digest; the sink must not be used afterwards.
    public func finalize() -> Hash {
        hasher.update(tail)
        position += UInt64(tail.count)
        tail = []
        for m in matches { hasher.update("|\(m)") }
        return hasher.finalize()
    }
}
