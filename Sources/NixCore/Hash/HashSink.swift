import CCrypto

/// A streaming digest. Backed by OpenSSL's libcrypto EVP interface, which uses the CPU's
/// SHA extensions when present; Docs/Hashing.md has the measurements behind that choice.
/// All libcrypto calls of NixCore live in this file.
public final class HashSink {
    public let algorithm: HashAlgorithm
    private let ctx: OpaquePointer

    public init(_ algorithm: HashAlgorithm) {
        self.algorithm = algorithm
        guard let ctx = EVP_MD_CTX_new() else { fatalError("libcrypto: out of memory") }
        self.ctx = ctx
        EVP_DigestInit_ex(ctx, HashSink.md(algorithm), nil)
    }

    deinit { EVP_MD_CTX_free(ctx) }

    private static func md(_ a: HashAlgorithm) -> OpaquePointer? {
        switch a {
        case .md5: return EVP_md5()
        case .sha1: return EVP_sha1()
        case .sha256: return EVP_sha256()
        case .sha512: return EVP_sha512()
        }
    }

    public func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        EVP_DigestUpdate(ctx, base, buffer.count)
    }

    public func update<C: ContiguousBytes>(_ bytes: C) {
        bytes.withUnsafeBytes { update($0) }
    }

    public func update(_ string: String) {
        var s = string
        s.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }

    /// Finishes the digest; the hasher must not be used afterwards.
    public func finalize() -> Hash {
        var out = [UInt8](repeating: 0, count: algorithm.size)
        var len: UInt32 = 0
        out.withUnsafeMutableBufferPointer { _ = EVP_DigestFinal_ex(ctx, $0.baseAddress, &len) }
        return Hash(unchecked: algorithm, out)
    }

    /// One-shot digest of bytes.
    public static func hash<C: ContiguousBytes>(_ algorithm: HashAlgorithm, _ bytes: C) -> Hash {
        let h = HashSink(algorithm)
        h.update(bytes)
        return h.finalize()
    }

    /// One-shot digest of a string's UTF-8.
    public static func hash(_ algorithm: HashAlgorithm, string: String) -> Hash {
        let h = HashSink(algorithm)
        h.update(string)
        return h.finalize()
    }
}

/// Bytes that can be viewed contiguously (Foundation-free stand-in for Data/Array).
public protocol ContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}
extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
extension ContiguousArray: ContiguousBytes where Element == UInt8 {}
extension UnsafeRawBufferPointer: ContiguousBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try body(self) }
}
