import Foundation
import NixCore

/// Store paths made with the real nix CLI, as the signing and content-address tests use them.
extension SigningFixtures {
    /// PathInfo from `nix path-info --json` (Nix 2.8 prints the NAR hash in SRI form).
    public static func pathInfo(_ path: String) throws -> PathInfo {
        let json = try SigningFixtures.pathInfoJSON(path)
        let dir = StoreDirectory.default
        return PathInfo(
            path: try dir.parse(path),
            deriver: try (json["deriver"] as? String).map { p throws(StorePathError) in try dir.parse(p) },
            narHash: try Hash(parsing: json["narHash"] as? String ?? ""),
            references: Set(try (json["references"] as? [String] ?? []).map { try dir.parse($0) }),
            narSize: (json["narSize"] as? NSNumber)?.uint64Value ?? 0,
            ca: try (json["ca"] as? String).map { try ContentAddress(parsing: $0) })
    }

    /// One path of each kind Nix makes content-addressed, made now.
    public static func caPaths() throws -> [String] {
        let dir = try TestSupport.temporaryDirectory("nb-ca")
        let file = dir.appendingPathComponent("nbsign-ca")
        try "content \(UUID())".write(to: file, atomically: true, encoding: .utf8)
        let dep = try TestSupport.run(["nix-store", "--add", file.path]).trimmed
        let text = try TestSupport.run(["nix-instantiate", "--read-write-mode", "--eval", "-E",
                                        "builtins.toFile \"nbsign-text\" \"refers to ${builtins.storePath \(dep)}\""])
            .trimmed.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return [
            dep, // fixed:r:sha256 (source:)
            try TestSupport.run(["nix-store", "--add-fixed", "sha1", file.path]).trimmed, // fixed:sha1
            try TestSupport.run(["nix-store", "--add-fixed", "--recursive", "sha512", file.path]).trimmed, // fixed:r:sha512
            text, // text:sha256 with a reference
        ]
    }
}
