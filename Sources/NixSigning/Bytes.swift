/// 32 bytes held inline (an Ed25519 public key): no heap allocation to copy or compare.
struct Bytes32: Sendable, Hashable {
    private var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    init() {}

    /// Copies exactly 32 bytes; nil for any other count.
    init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        withUnsafeMutableBytes { out in
            for (i, b) in bytes.enumerated() { out[i] = b }
        }
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage, body)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &storage, body)
    }

    var array: [UInt8] { withUnsafeBytes { Array($0) } }

    static func == (a: Bytes32, b: Bytes32) -> Bool { a.storage == b.storage }
    func hash(into h: inout Swift.Hasher) {
        h.combine(storage.0); h.combine(storage.1); h.combine(storage.2); h.combine(storage.3)
    }
}

/// 64 bytes held inline (an Ed25519 signature or libsodium secret key).
struct Bytes64: Sendable, Hashable {
    private var storage: (Bytes32, Bytes32) = (Bytes32(), Bytes32())

    init() {}

    init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 64 else { return nil }
        withUnsafeMutableBytes { out in
            for (i, b) in bytes.enumerated() { out[i] = b }
        }
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage, body)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeMutableBytes(of: &storage, body)
    }

    var array: [UInt8] { withUnsafeBytes { Array($0) } }

    static func == (a: Bytes64, b: Bytes64) -> Bool { a.storage == b.storage }
    func hash(into h: inout Swift.Hasher) { h.combine(storage.0); h.combine(storage.1) }
}
