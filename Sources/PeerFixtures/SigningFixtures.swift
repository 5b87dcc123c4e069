import Foundation

/// Real Nix material for the signing tests, made at test time with the nix CLI.
public enum SigningFixtures {
    /// `nix path-info --json` of one path, as a dictionary.
    public static func pathInfoJSON(_ path: String) throws -> [String: Any] {
        let out = try PeerFixtures.nix(["path-info", "--json", path])
        let list = try JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]]
        guard let info = list?.first else { throw Failure("no path-info JSON for \(path)") }
        return info
    }

    /// An input-addressed path with two references, built with `nix-build` (a `/bin/sh`
    /// derivation; the same expression every time, so later runs reuse the output).
    public static let inputAddressedPath: Result<String, Error> = Result {
        let expr = """
            let a = builtins.toFile "nbsign-ref-a" "a"; b = builtins.toFile "nbsign-ref-b" "b"; in
            derivation { name = "nbsign-input-addressed"; system = builtins.currentSystem;
              builder = "/bin/sh"; args = [ "-c" "echo ${a} ${b} > $out" ]; }
            """
        return try PeerFixtures.run(["nix-build", "--no-out-link", "-E", expr]).trimmed
    }

    /// Copies `paths` (with their closure) into a new `file://` binary cache without
    /// compression; returns the cache directory.
    public static func fileCache(with paths: [String], label: String = "nb-cache") throws -> URL {
        let dir = try PeerFixtures.temporaryDirectory(label)
        try PeerFixtures.nix(["copy", "--to", "file://\(dir.path)?compression=none"] + paths)
        return dir
    }

    /// The narinfo file of `path` in a `file://` cache.
    public static func narinfoFile(_ path: String, in cache: URL) -> URL {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        return cache.appendingPathComponent(String(base.prefix(32)) + ".narinfo")
    }

    /// A key pair from `nix-store --generate-binary-cache-key`: (secret file, public file).
    public static func nixKeyPair(name: String, in dir: URL) throws -> (secret: URL, public: URL) {
        let sk = dir.appendingPathComponent("\(name).secret"), pk = dir.appendingPathComponent("\(name).public")
        try PeerFixtures.run(["nix-store", "--generate-binary-cache-key", name, sk.path, pk.path])
        return (sk, pk)
    }

    /// `nix store verify` against a `file://` cache; returns the exit status and stderr.
    public static func nixVerify(cache: URL, path: String, trusted: String, sigsNeeded: Int = 1) throws -> PeerFixtures.Output {
        try PeerFixtures.nix(["store", "verify", "--store", "file://\(cache.path)", "--sigs-needed", "\(sigsNeeded)",
                             "--trusted-public-keys", trusted, path], check: false)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }
}
