import Foundation
import NarInfoCache
import NixCore
import NixSigning

/// Trust verdicts as the lookup layer keeps them in the narinfo cache, so a warm lookup need
/// not check every cached signature again.
///
/// A verdict is recorded under `key`, a digest of everything besides the narinfo that it
/// depends on: the trusted keys (names and key bytes), sigs-needed and the store directory.
/// Any change to those settings changes the key, and verdicts made under another key are
/// never read: the paths are verified afresh. Only trusted verdicts whose every detail can be
/// rebuilt exactly are recorded ("ca", or "signed" and the names of the verifying keys, when
/// every other signature was by a key outside the set); an untrusted path is verified again
/// on every lookup, so its reasons are reported in full and it can never be read as trusted.
struct TrustVerdicts: Sendable {
    let trustedKeys: TrustedKeys
    let sigsNeeded: Int
    let storeDir: StoreDirectory
    let key: String

    init(trustedKeys: TrustedKeys, sigsNeeded: Int, storeDir: StoreDirectory) {
        self.trustedKeys = trustedKeys
        self.sigsNeeded = max(sigsNeeded, 1)
        self.storeDir = storeDir
        // TrustedKeys already keeps the first key of each name, so sorting loses nothing.
        var text = "nix-bridge trust verdict 1\nstore-dir \(storeDir.path)\nsigs-needed \(self.sigsNeeded)\n"
        for k in trustedKeys.keys.sorted(by: { $0.name < $1.name }) { text += "key \(k.description)\n" }
        key = HashSink.hash(.sha256, string: text).string(.nix32)
    }

    /// The verdict to record for `v`, or nil when it must not be (or cannot exactly be) kept.
    func encode(_ v: PathVerification) -> String? {
        guard v.isTrusted, v.fingerprintError == nil else { return nil }
        if v.contentAddress == .valid { return "ca" }
        guard v.contentAddress == .notContentAddressed,
              v.rejected.allSatisfy({ if case .untrustedKey = $0.check { true } else { false } })
        else { return nil }
        return "signed " + v.verifiedBy.map(\.name).joined(separator: " ")
    }

    /// Rebuilds the verdict recorded for `info` under this key, or nil when it is not one
    /// `encode` writes (the caller then verifies).
    /// - Parameter keys: the keys each verdict text names, filled as texts are met (a store's
    ///   answers share a few verdict texts).
    func decode(_ value: String, for info: PathInfo, keys: inout [String: [PublicKey]?]) -> PathVerification? {
        var v = PathVerification(storePath: info.path, storeDir: storeDir, sigsNeeded: sigsNeeded)
        if value == "ca" {
            // Cheap to check again (one SHA-256 of a short text), so the row is not believed.
            v.contentAddress = info.contentAddressCheck(in: storeDir)
            return v.isTrusted ? v : nil
        }
        if keys[value] == nil { keys[value] = .some(signers(value)) }
        guard let signers = keys[value] ?? nil else { return nil }
        v.verifiedBy = signers
        guard v.isTrusted else { return nil }
        // Every other signature was by a key outside the set (else no verdict was recorded);
        // as many signatures as signers means there is no other.
        guard info.sigs.count != signers.count else { return v }
        for sig in info.sigs {
            let name = sig.prefix { $0 != ":" }
            if trustedKeys.key(named: name) == nil { v.rejected.append((sig, .untrustedKey(keyName: String(name)))) }
        }
        return v
    }

    /// The distinct trusted keys a "signed" verdict names, or nil if it is not one.
    private func signers(_ value: String) -> [PublicKey]? {
        guard value.hasPrefix("signed ") else { return nil }
        var out: [PublicKey] = []
        for name in value.dropFirst(7).split(separator: " ") {
            guard let key = trustedKeys.key(named: name), !out.contains(key) else { return nil }
            out.append(key)
        }
        return out
    }

    /// Verifies `info`, reusing the outcome for the same path, contents and signatures
    /// already verified during this lookup (several builders often hold identical copies).
    func verify(_ info: PathInfo, memo: VerificationMemo) -> PathVerification {
        let memoKey = VerificationMemo.Key(info)
        if let known = memo[memoKey] { return known }
        let v = trustedKeys.verify(info, sigsNeeded: sigsNeeded, storeDir: storeDir)
        memo[memoKey] = v
        return v
    }
}

/// Verdicts made during one lookup, keyed by what a verdict depends on (not by the store).
final class VerificationMemo: @unchecked Sendable {
    struct Key: Hashable {
        var path: StorePath
        var narHash: Hash
        var narSize: UInt64
        var references: Set<StorePath>
        var sigs: Set<String>
        var ca: ContentAddress?

        init(_ info: PathInfo) {
            path = info.path
            narHash = info.narHash
            narSize = info.narSize
            references = info.references
            sigs = info.sigs
            ca = info.ca
        }
    }

    private let lock = NSLock()
    private var verdicts: [Key: PathVerification] = [:]

    subscript(key: Key) -> PathVerification? {
        get { lock.withLock { verdicts[key] } }
        set { lock.withLock { verdicts[key] = newValue } }
    }
}
