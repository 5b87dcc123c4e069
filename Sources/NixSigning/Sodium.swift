import CSodium

/// Every libsodium call of the project. libsodium is initialised once, on first use,
/// through a Swift global (lazily initialised with `swift_once`, hence thread-safe).
enum Sodium {
    private static let ready: Bool = {
        guard sodium_init() >= 0 else { return false }
        // The sizes the rest of NixSigning hard-codes (Nix's key and signature formats).
        return crypto_sign_publickeybytes() == 32 && crypto_sign_secretkeybytes() == 64
            && crypto_sign_bytes() == 64
    }()

    private static func ensureReady() {
        precondition(ready, "libsodium could not be initialised (or has unexpected Ed25519 sizes)")
    }

    /// A fresh Ed25519 key pair from the system's random source.
    static func keyPair() -> (public: Bytes32, secret: Bytes64) {
        ensureReady()
        var pk = Bytes32(), sk = Bytes64()
        let rc = pk.withUnsafeMutableBytes { p in
            sk.withUnsafeMutableBytes { s in
                crypto_sign_keypair(p.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                    s.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        precondition(rc == 0, "crypto_sign_keypair failed")
        return (pk, sk)
    }

    /// The public half stored inside a 64-byte libsodium secret key.
    static func publicKey(ofSecret sk: Bytes64) -> Bytes32 {
        ensureReady()
        var pk = Bytes32()
        pk.withUnsafeMutableBytes { p in
            sk.withUnsafeBytes { s in
                _ = crypto_sign_ed25519_sk_to_pk(p.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                 s.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return pk
    }

    /// A detached Ed25519 signature of `message`.
    static func sign(_ message: UnsafeRawBufferPointer, secret sk: Bytes64) -> Bytes64 {
        ensureReady()
        var sig = Bytes64()
        sig.withUnsafeMutableBytes { out in
            sk.withUnsafeBytes { s in
                _ = crypto_sign_detached(out.baseAddress!.assumingMemoryBound(to: UInt8.self), nil,
                                         message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                         UInt64(message.count), s.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return sig
    }

    /// True when `sig` is a valid signature of `message` by `pk`. No allocation.
    @inline(__always)
    static func verify(_ sig: Bytes64, _ message: UnsafeRawBufferPointer, publicKey pk: Bytes32) -> Bool {
        ensureReady()
        return sig.withUnsafeBytes { s in
            pk.withUnsafeBytes { p in
                crypto_sign_verify_detached(s.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                            message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                            UInt64(message.count),
                                            p.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
            }
        }
    }
}
