import Foundation
import NixCore
#if canImport(Glibc)
import Glibc
#endif

/// What a building fleet (`Fleet(features:)`) offers: its keys and machines file, a client
/// chroot store that receives derivations (real `nix-instantiate`) and outputs, and builds
/// run on the builders themselves.
extension Fleet {
    private var setup: BuildSetup {
        guard let build else { preconditionFailure("a fleet made with init(count:) does not build; use init(features:)") }
        return build
    }

    /// Each builder's `name:base64` public signing key.
    public var publicKeys: [String] { setup.publicKeys }
    public var trustedPublicKeys: String { publicKeys.joined(separator: " ") }
    /// The client's own signing key file (for `secret-key-files`) and its public key.
    public var clientSecretKeyFile: String { setup.clientSecretKeyFile }
    public var clientPublicKey: String { setup.clientPublicKey }
    /// The machines file: `ssh-ng://builderN SYSTEM KEY maxJobs 1 FEATURES - HOSTKEY`.
    public var machinesFile: String { setup.machinesFile }
    /// The client's chroot store root, and its store URI.
    public var clientRoot: String { setup.clientRoot }
    public var clientStoreURI: String { "local?root=\(clientRoot)" }
    public var system: String { Fleet.hostSystem() }
    /// Every machine, as a `--builders` value (`@<machines file>`).
    public var machinesSpec: String { "@" + machinesFile }

    /// What scripts/fleet writes: a chroot store builds sandboxed whatever `sandbox` says.
    public static func builderConf(storeRoot: String, secretKey: String?, features: [String]) -> String {
        var lines = [
            "store = local?root=\(storeRoot)", "sandbox = true", "sandbox-paths = /bin /usr /lib /lib64",
            "build-users-group = nixbld", "substituters =", "trusted-users = root",
            "system-features = \(features.joined(separator: " "))",
        ]
        if let secretKey { lines.append("secret-key-files = \(secretKey)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Lets builder `n` substitute from builder `source`'s store (its chroot store opened
    /// directly), trusting `source`'s key: for `builders-use-substitutes`.
    public func substitute(builder n: Int, from source: Int) throws {
        let conf = builder(n).nixConfDir + "/nix.conf"
        let text = try String(contentsOfFile: conf, encoding: .utf8)
            .replacingOccurrences(of: "substituters =\n",
                                  with: "substituters = local?root=\(builder(source).storeRoot)\ntrusted-public-keys = \(publicKeys[source - 1])\n")
        try text.write(toFile: conf, atomically: true, encoding: .utf8)
    }

    /// Whether a path is valid in builder n's store.
    public func builderHas(_ n: Int, _ path: String) -> Bool {
        (try? PeerFixtures.run(["nix-store", "--store", "local?root=\(builder(n).storeRoot)", "--check-validity", path],
                              check: false).status) == 0
    }

    /// Instantiates a Nix expression into the client store with the real `nix-instantiate`;
    /// returns the `.drv` path.
    public func instantiate(_ expression: String, store: String? = nil) throws -> String {
        try PeerFixtures.run(["nix-instantiate", "--store", store ?? clientStoreURI, "-E", expression]).trimmed
    }

    /// `nix-instantiate --store STORE FILE [-A ATTR]` in the client environment: the .drv path.
    public func instantiateFile(_ file: String, attribute: String? = nil, store: String) throws -> String {
        try run(["nix-instantiate", "--store", store, file] + (attribute.map { ["-A", $0] } ?? [])).trimmed
    }

    /// Builds a derivation inside builder n's own store with real Nix (its nix.conf: sandbox,
    /// signing key): the way a builder comes to hold an output.
    public func buildOnBuilder(_ n: Int, expression: String) throws -> String {
        let b = builder(n)
        let drv = try instantiate(expression, store: "local?root=\(b.storeRoot)")
        return try PeerFixtures.run(["nix-store", "--realise", drv], environment: ["NIX_CONF_DIR": b.nixConfDir]).trimmed
    }

    /// How many builds builder n has run: Nix keeps one log file per build.
    public func buildCount(_ n: Int) -> Int {
        let logs = builder(n).storeRoot + "/nix/var/log/nix/drvs"
        guard let e = FileManager.default.enumerator(atPath: logs) else { return 0 }
        return e.compactMap { $0 as? String }.filter { $0.hasSuffix(".drv.bz2") || $0.hasSuffix(".drv") }.count
    }

    /// Whether a path is valid in the client store, through the real nix CLI.
    public func clientHas(_ path: String) -> Bool {
        (try? PeerFixtures.run(["nix-store", "--store", clientStoreURI, "--check-validity", path], check: false).status) == 0
    }

    /// A derivation `name` run by /bin/sh with `script` (`$out` is the output), optionally
    /// requiring features; `inputs` are interpolated by the caller.
    public func expression(name: String, script: String, features: [String] = [], system: String? = nil) -> String {
        let feats = features.map { "\"\($0)\"" }.joined(separator: " ")
        let escaped = script.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return """
        derivation { name = "\(name)"; system = "\(system ?? self.system)"; builder = "/bin/sh"; \
        requiredSystemFeatures = [ \(feats) ]; args = [ "-c" "\(escaped)" ]; }
        """
    }

    /// The descendants of builder n's sshd whose command line contains `text` (e.g. a build's
    /// `sleep`).
    public func builderProcesses(_ n: Int, containing text: String) -> [pid_t] {
        let sshd = sshdPIDs[n - 1]
        return ProcessTree.descendants(of: sshd).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text)
        }
    }

    static func hostSystem() -> String {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return (machine == "arm64" ? "aarch64" : machine) + "-linux"
    }
}
