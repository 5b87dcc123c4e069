import NixCore

/// A binary-cache signing key in Nix's `name:base64` format: the base64 of libsodium's
/// 64-byte Ed25519 secret key (as `nix-store --generate-binary-cache-key` writes it).
/// Its description never shows the key material.
public struct SecretKey: Sendable, CustomStringConvertible {
    /// The key's name (`cache.example.org-1`); signatures carry it.
    public let name: String
    let bytes: Bytes64

    /// Parses the contents of a secret key file. `source` (a file name) is quoted in errors.
    public init(parsing text: some StringProtocol, source: String? = nil) throws(KeyError) {
        let (name, b64) = try splitKey(text, kind: .secret, source: source)
        switch KeyBase64.decode64(b64) {
        case let .success(b): bytes = b
        case let .failure(f): throw KeyError(kind: .secret, source: source, reason: .init(f, expected: 64))
        }
        self.name = name
    }

    init(name: String, bytes: Bytes64) {
        self.name = name
        self.bytes = bytes
    }

    /// A new random key. The name must be non-empty and hold no `:` or whitespace, so the
    /// key can be read back and listed in `trusted-public-keys`.
    public static func generate(name: String) throws(KeyError) -> SecretKey {
        try checkKeyName(name, kind: .secret)
        return SecretKey(name: name, bytes: Sodium.keyPair().secret)
    }

    /// The matching public key.
    public var publicKey: PublicKey { PublicKey(name: name, bytes: Sodium.publicKey(ofSecret: bytes)) }

    /// The `name:base64` text for a key file. Handle with care: it is the secret.
    public var fileContents: String { name + ":" + Base64.encode(bytes.array) }

    /// Signs a fingerprint (or any text): `name:base64(64-byte detached signature)`.
    public func sign(_ message: String) -> Signature {
        let sig = KeyBase64.withUTF8(Substring(message)) { Sodium.sign(UnsafeRawBufferPointer($0), secret: bytes) }
        return Signature(keyName: name, bytes: sig)
    }

    /// Signs a path's fingerprint (Nix's `ValidPathInfo::sign`).
    public func sign(_ info: PathInfo, storeDir: StoreDirectory = .default) throws(FingerprintError) -> Signature {
        sign(try info.fingerprint(in: storeDir))
    }

    public var description: String { "secret key '\(name)'" }
}

/// A public key in Nix's `name:base64(32 bytes)` format, as listed in `trusted-public-keys`.
public struct PublicKey: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    let bytes: Bytes32

    public init(parsing text: some StringProtocol, source: String? = nil) throws(KeyError) {
        let (name, b64) = try splitKey(text, kind: .public, source: source)
        switch KeyBase64.decode32(b64) {
        case let .success(b): bytes = b
        case let .failure(f): throw KeyError(kind: .public, source: source, reason: .init(f, expected: 32))
        }
        self.name = name
    }

    init(name: String, bytes: Bytes32) {
        self.name = name
        self.bytes = bytes
    }

    /// `name:base64`.
    public var description: String { name + ":" + Base64.encode(bytes.array) }

    /// True when `signature` is by this key (same name) and valid for `message`.
    public func verify(_ signature: Signature, message: String) -> Bool {
        signature.keyName == name && verifyBytes(signature.bytes, message: Substring(message))
    }

    @inline(__always)
    func verifyBytes(_ sig: Bytes64, message: Substring) -> Bool {
        KeyBase64.withUTF8(message) { Sodium.verify(sig, UnsafeRawBufferPointer($0), publicKey: bytes) }
    }
}

/// A detached signature `keyname:base64(64 bytes)`, as in narinfo `Sig:` lines.
public struct Signature: Sendable, Hashable, CustomStringConvertible {
    public let keyName: String
    let bytes: Bytes64

    init(keyName: String, bytes: Bytes64) {
        self.keyName = keyName
        self.bytes = bytes
    }

    /// Parses `name:base64`; Nix calls a wrong length "signature is not valid".
    public init(parsing text: some StringProtocol) throws(SignatureError) {
        let s = Substring(text)
        guard let colon = s.firstIndex(of: ":"), colon != s.startIndex else { throw .noKeyName(String(s)) }
        let name = String(s[..<colon])
        switch KeyBase64.decode64(s[s.index(after: colon)...]) {
        case let .success(b): self.init(keyName: name, bytes: b)
        case let .failure(f): throw .notValid(String(s), KeyError.Reason(f, expected: 64))
        }
    }

    public var description: String { keyName + ":" + Base64.encode(bytes.array) }
}

/// A `Sig:` value that is not a signature at all.
public enum SignatureError: Error, Equatable, Sendable, CustomStringConvertible {
    case noKeyName(String)
    case notValid(String, KeyError.Reason)

    public var description: String {
        switch self {
        case let .noKeyName(s): return "signature '\(s)' is not valid: expected '<key name>:<base64>'"
        case let .notValid(s, r): return "signature '\(s)' is not valid: \(r)"
        }
    }
}

/// Key names must survive `name:base64` and whitespace-separated lists.
func checkKeyName(_ name: String, kind: KeyError.Kind, source: String? = nil) throws(KeyError) {
    guard !name.isEmpty else { throw KeyError(kind: kind, source: source, reason: .missingName) }
    for c in name.unicodeScalars where c == ":" || c.properties.isWhitespace || c.value < 0x20 || c.value == 0x7f {
        throw KeyError(kind: kind, source: source, reason: .badName(name))
    }
}

/// Splits `name:base64` as Nix's `Key` does (first colon; neither part empty). A trailing
/// newline in a key file is tolerated, as Nix's base64 decoder skips newlines.
private func splitKey(_ text: some StringProtocol, kind: KeyError.Kind,
                      source: String?) throws(KeyError) -> (String, Substring) {
    let s = Substring(text)
    guard s.utf8.count <= 4096 else { throw KeyError(kind: kind, source: source, reason: .tooLong(s.utf8.count)) }
    guard let colon = s.firstIndex(of: ":") else {
        throw KeyError(kind: kind, source: source, reason: s.isEmpty ? .missingKey : .missingName)
    }
    guard colon != s.startIndex else { throw KeyError(kind: kind, source: source, reason: .missingName) }
    let rest = s[s.index(after: colon)...]
    guard rest.contains(where: { $0 != "\n" }) else { throw KeyError(kind: kind, source: source, reason: .missingKey) }
    return (String(s[..<colon]), rest)
}
