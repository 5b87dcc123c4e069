import Foundation
import NixCore
#if canImport(Glibc)
import Glibc
#endif

/// A loopback fleet of real Nix builders and the client environment that uses them: the
/// one fixture for every test and benchmark that needs builders.
///
/// Each builder is an OpenSSH `sshd` on 127.0.0.1 with its own host key, authorized_keys,
/// HOME and Nix store (`store = local?root=DIR` through a per-builder NIX_CONF_DIR).
/// `sshConfig` works for our code, for `ssh -F`, and for real Nix through
/// `NIX_SSHOPTS="-F <sshConfig>"`: `ssh-ng://builder1` then reaches builder 1's store.
///
/// `init(count:)` makes builders that serve their stores; `init(features:)` makes builders
/// that also build, as scripts/fleet makes them (sandboxed, nixbld users, each signing what
/// it builds with its own key, its own `system-features`), with a machines file and a client
/// chroot store. Either way `environment` is what a user would run `nix-bridge` and `nix`
/// in: `NIX_SSHOPTS`, a nix.conf of the fleet's own (so the machine's /etc/nix stays out),
/// and cache, config and state (slot lock) directories under `directory`.
///
/// Needs root (sshd runs as root and logs in as root). The sshds this fleet started end, by
/// PID, on `stop()` or when the fleet is released; the directory is removed on release.
public final class Fleet: @unchecked Sendable {
    public struct Builder: Sendable {
        /// ssh_config alias and HostKeyAlias, "builder1"...
        public var name: String
        public var port: Int
        /// The builder's chroot store root: its store paths live under `<storeRoot>/nix/store`.
        public var storeRoot: String
        /// The directory exported as NIX_CONF_DIR on the builder (holds nix.conf).
        public var nixConfDir: String
        public var home: String
        /// "ssh-ed25519 AAAA... builderN".
        public var hostKeyLine: String
        /// base64 of `hostKeyLine`, as in a machines file's 8th field.
        public var hostKeyBase64: String
        /// Public key lines of further host keys (`extraHostKeyTypes`), not in known_hosts.
        public var extraHostKeyLines: [String]
        /// `ssh-ng://builderN`.
        public var storeURI: String { "ssh-ng://\(name)" }
        /// `local?root=<storeRoot>`: the builder's store opened directly.
        public var localStoreURI: String { "local?root=\(storeRoot)" }
    }

    /// The fleet's folder: builders, client keys and configuration, scratch files.
    public let directory: URL
    public var work: URL { directory }
    public let builders: [Builder]
    /// Client ssh_config with a `Host builderN` block per builder.
    public let sshConfig: String
    public let knownHosts: String
    /// Client private keys (both in every builder's authorized_keys).
    public let clientKey: String
    public let clientECDSAKey: String
    /// A key no builder accepts.
    public let strangerKey: String
    /// The client's nix.conf folder (`NIX_CONF_DIR` in `environment`).
    public let clientConfDir: String
    /// The environment a client of the fleet runs in.
    public let environment: [String: String]
    /// Set for building fleets (`init(features:)`), see `BuildSetup`.
    public private(set) var build: BuildSetup?
    private let lock = NSLock()
    private var processes: [SpawnedProcess]

    /// What a building fleet has besides its sshds.
    public struct BuildSetup: Sendable {
        /// Each builder's `name:base64` public signing key.
        public var publicKeys: [String]
        /// The client's own signing key file (for `secret-key-files`) and its public key.
        public var clientSecretKeyFile: String
        public var clientPublicKey: String
        /// `ssh-ng://builderN SYSTEM KEY maxJobs 1 FEATURES - HOSTKEY` per builder.
        public var machinesFile: String
        /// The client's chroot store root.
        public var clientRoot: String
    }

    /// `NIX_SSHOPTS` for real Nix.
    public var nixSSHOpts: String { "-F \(sshConfig)" }

    public static var canRun: Bool { PeerFixtures.which("sshd") != nil && PeerFixtures.which("ssh-keygen") != nil && getuid() == 0 }

    /// Starts `count` builders that serve their stores. `extraNixConf` lines go into every
    /// builder's nix.conf; `extraHostKeyTypes` (e.g. ["ecdsa"]) gives each sshd more host
    /// keys besides ed25519. `roots[i]`, when given, is a Debian root
    /// (`NixVersions.nix226Root`) whose own sshd and Nix serve builder i+1, through
    /// scripts/in-root with the builder's folder bound in. `clientNixConf` is the client's
    /// nix.conf (empty: Nix's defaults); `extraSSHDConfig` lines go into every sshd_config.
    public convenience init(count: Int, extraNixConf: [String] = [], extraHostKeyTypes: [String] = [],
                            roots: [String?] = [], label: String = "nb-fleet", clientNixConf: String = "",
                            extraSSHDConfig: [String] = []) throws {
        try self.init(count: count, label: label, roots: roots, extraHostKeyTypes: extraHostKeyTypes,
                      extraSSHDConfig: extraSSHDConfig,
                      builderConf: { b, _ in (["store = local?root=\(b)/store", "sandbox = false"] + extraNixConf)
                          .joined(separator: "\n") + "\n" },
                      setup: { _ in (nil, clientNixConf) })
    }

    /// Starts one building builder per entry of `features` (its `system-features`), each
    /// signing with its own key `builderN-1`, and writes the machines file (`maxJobs` slots
    /// each). The client's nix.conf trusts the builders' keys and has no substituters.
    public convenience init(features: [[String]], maxJobs: Int = 1, label: String = "nb-build", roots: [String?] = []) throws {
        let system = Fleet.hostSystem()
        try self.init(count: features.count, label: label, roots: roots, extraHostKeyTypes: [], extraSSHDConfig: [],
                      builderConf: { b, i in
                          let sec = "\(b)/signing.sec", pub = "\(b)/signing.pub"
                          try PeerFixtures.run(["nix-store", "--generate-binary-cache-key", "builder\(i + 1)-1", sec, pub])
                          return Fleet.builderConf(storeRoot: "\(b)/store", secretKey: sec, features: features[i])
                      },
                      setup: { fleet in
                          let dir = fleet.directory.path
                          var keys: [String] = [], machines = ""
                          for (i, b) in fleet.builders.enumerated() {
                              let pub = URL(fileURLWithPath: b.nixConfDir).deletingLastPathComponent().path + "/signing.pub"
                              keys.append(try String(contentsOfFile: pub, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
                              let feats = features[i].isEmpty ? "-" : features[i].joined(separator: ",")
                              machines += "\(b.storeURI) \(system) \(fleet.clientKey) \(maxJobs) 1 \(feats) - \(b.hostKeyBase64)\n"
                          }
                          let sec = "\(dir)/client.sec", pub = "\(dir)/client.pub"
                          try PeerFixtures.run(["nix-store", "--generate-binary-cache-key", "client-1", sec, pub])
                          try machines.write(toFile: "\(dir)/machines", atomically: true, encoding: .utf8)
                          let setup = BuildSetup(publicKeys: keys, clientSecretKeyFile: sec,
                                                 clientPublicKey: try String(contentsOfFile: pub, encoding: .utf8),
                                                 machinesFile: "\(dir)/machines", clientRoot: "\(dir)/client")
                          return (setup, "substituters =\ntrusted-public-keys = \(keys.joined(separator: " "))\n")
                      })
    }

    private struct Partial {
        var directory: URL
        var builders: [Builder]
        var clientKey: String
    }

    private init(count: Int, label: String, roots: [String?], extraHostKeyTypes: [String], extraSSHDConfig: [String],
                 builderConf: (String, Int) throws -> String,
                 setup: (Fleet) throws -> (BuildSetup?, String)) throws {
        directory = try PeerFixtures.temporaryDirectory(label)
        let dir = directory.path
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        clientKey = "\(dir)/client_ed25519"
        clientECDSAKey = "\(dir)/client_ecdsa"
        strangerKey = "\(dir)/stranger_ed25519"
        try Self.keygen(type: "ed25519", path: clientKey, comment: "nix-bridge-test")
        try Self.keygen(type: "ecdsa", path: clientECDSAKey, comment: "nix-bridge-test-ecdsa")
        try Self.keygen(type: "ed25519", path: strangerKey, comment: "stranger")
        let authorized = try String(contentsOfFile: clientKey + ".pub", encoding: .utf8)
            + String(contentsOfFile: clientECDSAKey + ".pub", encoding: .utf8)
        knownHosts = "\(dir)/known_hosts"
        sshConfig = "\(dir)/ssh_config"
        clientConfDir = "\(dir)/nixconf"
        environment = [
            "NIX_SSHOPTS": "-F \(dir)/ssh_config",
            "NIX_CONF_DIR": clientConfDir,
            "NIX_USER_CONF_FILES": "\(clientConfDir)/nix.conf",
            "XDG_CONFIG_HOME": "\(dir)/xdg-config",
            "XDG_CACHE_HOME": "\(dir)/xdg-cache",
            // The openssh transport's ControlMasters then live under XDG_CACHE_HOME too.
            "XDG_RUNTIME_DIR": "",
            // The slot locks (current-load) every client of this fleet shares.
            "XDG_STATE_HOME": "\(dir)/xdg-state",
        ]
        var builders: [Builder] = []
        var knownLines = "", configText = ""
        processes = []
        build = nil
        for i in 1...count {
            let name = "builder\(i)", b = "\(dir)/\(name)"
            for sub in ["home", "nixconf", "store"] {
                try FileManager.default.createDirectory(atPath: "\(b)/\(sub)", withIntermediateDirectories: true)
            }
            try Self.keygen(type: "ed25519", path: "\(b)/host_ed25519", comment: name)
            let hostLine = try String(contentsOfFile: "\(b)/host_ed25519.pub", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            var extraLines: [String] = []
            for type in extraHostKeyTypes {
                try Self.keygen(type: type, path: "\(b)/host_\(type)", comment: name)
                extraLines.append(try String(contentsOfFile: "\(b)/host_\(type).pub", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines))
            }
            try authorized.write(toFile: "\(b)/authorized_keys", atomically: true, encoding: .utf8)
            try builderConf(b, i - 1).write(toFile: "\(b)/nixconf/nix.conf", atomically: true, encoding: .utf8)
            let hostKeys = ["\(b)/host_ed25519"] + extraHostKeyTypes.map { "\(b)/host_\($0)" }
            let (sshd, port) = try Self.startSSHD(dir: b, hostKeys: hostKeys, root: i <= roots.count ? roots[i - 1] : nil,
                                               extra: extraSSHDConfig)
            processes.append(sshd)
            knownLines += "\(name) \(hostLine)\n"
            configText += """
            Host \(name)
              HostName 127.0.0.1
              Port \(port)
              User root
              IdentityFile \(clientKey)
              IdentitiesOnly yes
              HostKeyAlias \(name)
              UserKnownHostsFile \(knownHosts)
              StrictHostKeyChecking yes
              BatchMode yes
              LogLevel ERROR

            """
            builders.append(Builder(name: name, port: port, storeRoot: "\(b)/store", nixConfDir: "\(b)/nixconf",
                                    home: "\(b)/home", hostKeyLine: hostLine,
                                    hostKeyBase64: Base64.encode(Array(hostLine.utf8)), extraHostKeyLines: extraLines))
        }
        self.builders = builders
        try knownLines.write(toFile: knownHosts, atomically: true, encoding: .utf8)
        try configText.write(toFile: sshConfig, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: clientConfDir, withIntermediateDirectories: true)
        let (build, conf) = try setup(self)
        self.build = build
        try conf.write(toFile: "\(clientConfDir)/nix.conf", atomically: true, encoding: .utf8)
    }

    /// The PIDs of the listening sshds.
    public var sshdPIDs: [pid_t] { lock.withLock { processes.map(\.pid) } }

    /// Ends the sshds (SIGTERM to the PIDs this fleet started). Sessions still open end
    /// when their clients disconnect.
    public func stop() {
        let ps = lock.withLock { defer { processes = [] }; return processes }
        for p in ps { p.stop() }
    }

    /// Ends builder n's sshd only (by PID): the builder vanishes, the others stay.
    public func stop(builder n: Int) {
        let p: SpawnedProcess? = lock.withLock { n - 1 < processes.count ? processes[n - 1] : nil }
        p?.stop()
    }

    deinit {
        stop()
        stopControlMasters()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The openssh transport's ControlMasters of this fleet's clients (under its
    /// XDG_CACHE_HOME): `ssh -O exit` to each rather than their ControlPersist wait.
    public func stopControlMasters() {
        let dir = "\(directory.path)/xdg-cache/nix-bridge/ssh"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        for name in names where !name.contains(".") {
            _ = try? PeerFixtures.run(["ssh", "-O", "exit", "-oControlPath=\(dir)/\(name)", "master"], check: false)
        }
    }

    /// Builder n (1-based).
    public func builder(_ n: Int) -> Builder { builders[n - 1] }

    /// `local?root=<builder n's store root>`: the builder's store opened directly.
    public func localStore(_ n: Int) -> String { builder(n).localStoreURI }

    /// Runs `ssh -F sshConfig <builder> <command>` with OpenSSH's client.
    @discardableResult
    public func ssh(_ builder: Int, _ command: String, input: Data? = nil, check: Bool = true) throws -> PeerFixtures.Output {
        try PeerFixtures.run(["ssh", "-F", sshConfig, builders[builder - 1].name, command], input: input, check: check)
    }

    /// Runs a command to its end in the fleet's client environment.
    @discardableResult
    public func run(_ command: [String], input: Data? = nil, check: Bool = true) throws -> PeerFixtures.Output {
        try PeerFixtures.run(command, input: input, environment: environment, check: check)
    }

    /// Real `nix ARGS` (nix-command enabled) in the client environment.
    @discardableResult
    public func nix(_ args: [String], check: Bool = true) throws -> PeerFixtures.Output {
        try run(["nix", "--extra-experimental-features", "nix-command"] + args, check: check)
    }

    /// Writes a file into the fleet's folder; returns its path.
    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// Adds a file to builder n's store with `nix-store --add` (a content-addressed path).
    public func addFile(_ n: Int, name: String, contents: String) throws -> String {
        try run(["nix-store", "--store", localStore(n), "--add", try write(name, contents)]).trimmed
    }

    /// A fresh chroot store in the fleet's folder, as a store URI.
    public func newLocalStore(_ name: String) -> String {
        "local?root=\(directory.appendingPathComponent(name).path)"
    }
}
