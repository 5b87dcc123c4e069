import NixCore

/// The names a Nix HTTP binary cache answers to, and how a NAR's URL leads back to its path.
///
/// A narinfo's `URL:` is `nar/<nix32 NAR hash>.nar?hash=<hash part>`, as harmonia writes it:
/// the NAR hash keeps the URL unique per content, the query names the path to stream it from.
/// nix-serve's `nar/<hash part>-<nix32 NAR hash>.nar` is accepted as well.
enum CacheURL {
    /// Length of a SHA-256 hash in Nix's base 32.
    static let narHashLength = 52

    /// `nar/<narhash>.nar?hash=<hashpart>` for a path's info.
    static func nar(for info: PathInfo) -> String {
        "nar/" + info.narHash.string(.nix32, withAlgorithm: false) + ".nar?hash=" + info.path.hashPart
    }

    /// A NAR request: the path's hash part and the NAR hash (nix32, no algorithm) the URL names.
    struct NarRequest: Equatable {
        var hashPart: String
        var narHash: String
    }

    /// Parses the last component of `/nar/...` (`file`) and the `hash` query parameter.
    static func narRequest(file: some StringProtocol, hashQuery: String?) -> NarRequest? {
        guard file.hasSuffix(".nar") else { return nil }
        let stem = file.dropLast(".nar".count)
        if let hashQuery {
            guard isNarHash(stem), isHashPart(hashQuery) else { return nil }
            return NarRequest(hashPart: hashQuery, narHash: String(stem))
        }
        // nix-serve: <hashpart>-<narhash>
        guard stem.utf8.count == StorePath.hashPartLength + 1 + narHashLength else { return nil }
        let hashPart = stem.prefix(StorePath.hashPartLength)
        let rest = stem.dropFirst(StorePath.hashPartLength)
        guard rest.first == "-", isHashPart(hashPart), isNarHash(rest.dropFirst()) else { return nil }
        return NarRequest(hashPart: String(hashPart), narHash: String(rest.dropFirst()))
    }

    /// The NAR request of a request target (`/nar/<file>?hash=<hashpart>`), if it is one.
    static func narRequest(target: String) -> NarRequest? {
        guard target.hasPrefix("/nar/") else { return nil }
        let parts = target.dropFirst("/nar/".count).split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let hash = parts.count > 1 ? parts[1].split(separator: "&").first { $0.hasPrefix("hash=") }?.dropFirst("hash=".count) : nil
        return narRequest(file: parts[0], hashQuery: hash.map(String.init))
    }

    static func isHashPart(_ s: some StringProtocol) -> Bool {
        s.utf8.count == StorePath.hashPartLength && Nix32.isValid(s)
    }

    static func isNarHash(_ s: some StringProtocol) -> Bool {
        s.utf8.count == narHashLength && Nix32.isValid(s)
    }
}
