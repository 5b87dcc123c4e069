import NixCore

/// The `trusted-public-keys` set, pre-decoded for fast verification. As in Nix (a
/// `std::map` filled with `emplace`), the first key with a given name wins.
public struct TrustedKeys: Sendable {
    /// The keys, in the order given, without later duplicates of a name.
    public let keys: [PublicKey]
    /// Name lookup for larger sets; small sets are scanned (faster, no hashing of names).
    private let index: [String: Int]

    public init(_ keys: [PublicKey]) {
        var unique = [PublicKey](), index = [String: Int]()
        for k in keys where index[k.name] == nil {
            index[k.name] = unique.count
            unique.append(k)
        }
        self.keys = unique
        self.index = index
    }

    /// Parses a whitespace-separated list such as the `trusted-public-keys` setting.
    public init(parsing list: some StringProtocol) throws(KeyError) {
        var keys = [PublicKey]()
        for word in list.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) {
            keys.append(try PublicKey(parsing: word))
        }
        self.init(keys)
    }

    /// The trusted key called `name`, if any.
    public func key(named name: some StringProtocol) -> PublicKey? {
        keyIndex(Substring(name)).map { keys[$0] }
    }

    @inline(__always)
    private func keyIndex(_ name: Substring) -> Int? {
        if keys.count > 8 { return index[String(name)] }
        for i in keys.indices where keys[i].name.utf8.elementsEqual(name.utf8) { return i }
        return nil
    }

    /// Checks one `Sig:` value against a fingerprint (Nix's `verifyDetached`): a signature by
    /// a key name not in the set does not count; a wrong-length one for a trusted name is
    /// "not valid". Allocates nothing on the success path.
    public func check(signature: some StringProtocol, fingerprint: String) -> SignatureCheck {
        let s = Substring(signature)
        guard let colon = s.utf8.firstIndex(of: UInt8(ascii: ":")), colon != s.startIndex else {
            return .malformed(String(s), .noKeyName(String(s)))
        }
        let name = s[..<colon]
        guard let i = keyIndex(name) else { return .untrustedKey(keyName: String(name)) }
        switch KeyBase64.decode64(s[s.index(after: colon)...]) {
        case let .failure(f):
            return .malformed(String(s), .notValid(String(s), KeyError.Reason(f, expected: 64)))
        case let .success(sig):
            let key = keys[i]
            return key.verifyBytes(sig, message: Substring(fingerprint)) ? .valid(key) : .mismatch(key)
        }
    }

    /// Decides whether `info` is trusted, as Nix's `checkSignatures` with `sigsNeeded`
    /// (`nix store verify`): a correctly content-addressed path needs no signature;
    /// otherwise at least `max(sigsNeeded, 1)` distinct trusted keys must have signed its
    /// fingerprint. Reports which keys verified and why every other signature did not count.
    public func verify(_ info: PathInfo, sigsNeeded: Int = 1,
                       storeDir: StoreDirectory = .default) -> PathVerification {
        var result = PathVerification(storePath: info.path, storeDir: storeDir, sigsNeeded: max(sigsNeeded, 1))
        result.contentAddress = info.contentAddressCheck(in: storeDir)
        if result.contentAddress == .valid { return result }
        let fingerprint: String
        do {
            fingerprint = try info.fingerprint(in: storeDir)
        } catch {
            result.fingerprintError = error
            return result
        }
        for sig in info.sigs {
            let check = check(signature: sig, fingerprint: fingerprint)
            if case let .valid(key) = check {
                // One key signing twice (two encodings) still counts once.
                if !result.verifiedBy.contains(key) { result.verifiedBy.append(key) }
            } else {
                result.rejected.append((sig, check))
            }
        }
        return result
    }
}

/// What became of one signature.
public enum SignatureCheck: Sendable, Equatable, CustomStringConvertible {
    case valid(PublicKey)
    /// No key of that name in `trusted-public-keys`: Nix ignores such signatures.
    case untrustedKey(keyName: String)
    /// A trusted key's name, but the signature does not match the fingerprint.
    case mismatch(PublicKey)
    case malformed(String, SignatureError)

    public var description: String {
        switch self {
        case let .valid(k): return "signature by '\(k.name)' is valid"
        case let .untrustedKey(n): return "signature by '\(n)' does not count: no key named '\(n)' in 'trusted-public-keys'"
        case let .mismatch(k): return "signature by '\(k.name)' does not match the path's fingerprint"
        case let .malformed(_, e): return "\(e)"
        }
    }
}

/// The verdict on one path.
public struct PathVerification: Sendable, CustomStringConvertible {
    public var storePath: StorePath
    public var storeDir: StoreDirectory
    /// The full store path.
    public var path: String { storeDir.print(storePath) }
    /// `max(sigsNeeded, 1)`.
    public var sigsNeeded: Int
    public var contentAddress: ContentAddressCheck = .notContentAddressed
    /// Trusted keys whose signature is valid, distinct.
    public var verifiedBy: [PublicKey] = []
    /// Every other signature, with the reason it did not count.
    public var rejected: [(signature: String, check: SignatureCheck)] = []
    /// Set when no fingerprint could be computed (unknown size, non-SHA-256 hash).
    public var fingerprintError: FingerprintError?

    /// A verdict with nothing verified yet (callers that rebuild a remembered verdict fill it in).
    public init(storePath: StorePath, storeDir: StoreDirectory, sigsNeeded: Int) {
        self.storePath = storePath
        self.storeDir = storeDir
        self.sigsNeeded = sigsNeeded
    }

    /// True when the path may be used: content-addressed as its info alone proves, or signed
    /// by enough keys.
    public var isTrusted: Bool { contentAddress == .valid || verifiedBy.count >= sigsNeeded }

    /// True when the path may be used once its NAR has matched its content address (a
    /// `ContentAddressVerifier` over the NAR as it is fetched), or is trusted already. Never
    /// enough to sign it.
    public var isTrustedOnceNARMatches: Bool { isTrusted || contentAddress == .needsContent }

    public var description: String {
        if contentAddress == .valid { return "path '\(path)' is content-addressed and needs no signature" }
        if isTrusted {
            return "path '\(path)' is signed by " + verifiedBy.map { "'\($0.name)'" }.joined(separator: ", ")
        }
        var lines: [String]
        if verifiedBy.isEmpty {
            lines = ["path '\(path)' is not signed by any of the keys in 'trusted-public-keys'"]
        } else {
            lines = ["path '\(path)' is untrusted: it has \(verifiedBy.count) valid signature(s) ("
                + verifiedBy.map { "'\($0.name)'" }.joined(separator: ", ") + "), \(sigsNeeded) needed"]
        }
        switch contentAddress {
        case let .mismatch(computed):
            lines.append("  path '\(path)' claims to be content-addressed but isn't"
                + (computed.map { " (its CA gives '\($0.baseName)')" } ?? ""))
        case let .hashMismatch(specified, narHash):
            lines.append("  path '\(path)' claims to be content-addressed but isn't: its CA hash is "
                + "\(specified.string(.nix32)), its NAR hash \(narHash.string(.nix32))")
        case .needsContent:
            lines.append("  path '\(path)' is content-addressed if its NAR matches its CA (checked when it is fetched)")
        case .valid, .notContentAddressed:
            break
        }
        if let fingerprintError { lines.append("  \(fingerprintError)") }
        for (_, check) in rejected.sorted(by: { $0.signature < $1.signature }) { lines.append("  \(check)") }
        return lines.joined(separator: "\n")
    }
}
