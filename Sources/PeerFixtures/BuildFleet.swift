import Foundation
import NixCore
#if canImport(Glibc)
import Glibc
#endif

/// A real SSH fleet whose builders can build (as scripts/fleet makes them): each builder's
/// chroot store builds sandboxed (`sandbox-paths = /bin /usr /lib /lib64`, nixbld users),
/// signs what it builds with its own key, and offers its own `system-features`. A client
/// chroot store receives the derivations (real `nix-instantiate`) and the outputs.
public final class BuildFleet: @unchecked Sendable {
    public let fleet: SSHFleet
    public let work: URL
    /// The client's chroot store root.
    public let clientRoot: String
    /// Each builder's `name:base64` public signing key.
    public let publicKeys: [String]
    /// The client's own signing key file (for `secret-key-files`) and its public key.
    public let clientSecretKeyFile: String
    public let clientPublicKey: String
    /// A machines file: `ssh-ng://builderN SYSTEM KEY maxJobs 1 FEATURES - HOSTKEY`.
    public let machinesFile: String
    public let system: String

    public var clientStoreURI: String { "local?root=\(clientRoot)" }
    public var trustedPublicKeys: String { publicKeys.joined(separator: " ") }

    /// - Parameter features: each builder's `system-features` (the fleet has as many builders).
    /// - Parameter roots: see `SSHFleet.init` (builders served from another Debian root's Nix).
    public init(features: [[String]], maxJobs: Int = 1, label: String = "nb-build", roots: [String?] = []) throws {
        fleet = try SSHFleet(count: features.count, roots: roots)
        work = try PeerFixtures.temporaryDirectory(label)
        clientRoot = work.appendingPathComponent("client").path
        system = BuildFleet.hostSystem()
        var keys: [String] = []
        var machines = ""
        for (i, b) in fleet.builders.enumerated() {
            let dir = URL(fileURLWithPath: b.nixConfDir).deletingLastPathComponent().path
            let sec = dir + "/signing.sec", pub = dir + "/signing.pub"
            try PeerFixtures.run(["nix-store", "--generate-binary-cache-key", "\(b.name)-1", sec, pub])
            keys.append(try String(contentsOfFile: pub, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
            try Self.builderConf(storeRoot: b.storeRoot, secretKey: sec, features: features[i])
                .write(toFile: b.nixConfDir + "/nix.conf", atomically: true, encoding: .utf8)
            let feats = features[i].isEmpty ? "-" : features[i].joined(separator: ",")
            machines += "\(b.storeURI) \(system) \(fleet.clientKey) \(maxJobs) 1 \(feats) - \(b.hostKeyBase64)\n"
        }
        publicKeys = keys
        clientSecretKeyFile = work.appendingPathComponent("client.sec").path
        let clientPub = work.appendingPathComponent("client.pub").path
        try PeerFixtures.run(["nix-store", "--generate-binary-cache-key", "client-1", clientSecretKeyFile, clientPub])
        clientPublicKey = try String(contentsOfFile: clientPub, encoding: .utf8)
        machinesFile = work.appendingPathComponent("machines").path
        try machines.write(toFile: machinesFile, atomically: true, encoding: .utf8)
    }

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

    public func stop() {
        fleet.stop()
        try? FileManager.default.removeItem(at: work)
    }

    public func builder(_ n: Int) -> SSHFleet.Builder { fleet.builders[n - 1] }

    /// Instantiates a Nix expression into the client store with the real `nix-instantiate`;
    /// returns the `.drv` path.
    public func instantiate(_ expression: String, store: String? = nil) throws -> String {
        try PeerFixtures.run(["nix-instantiate", "--store", store ?? clientStoreURI, "-E", expression]).trimmed
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
        let sshd = fleet.sshdPIDs[n - 1]
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
