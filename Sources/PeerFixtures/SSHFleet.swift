import Foundation
import NixCore
#if canImport(Glibc)
import Glibc
#endif

/// A loopback fleet of real Nix builders: one OpenSSH `sshd` per builder on 127.0.0.1, each
/// with its own host key, authorized_keys, HOME and Nix store (`store = local?root=DIR`
/// through a per-builder NIX_CONF_DIR). `sshConfig` works for our code, for `ssh -F`, and for
/// real Nix through `NIX_SSHOPTS="-F <sshConfig>"`: `ssh-ng://builder1` then reaches
/// builder 1's store.
///
/// Needs root (sshd runs as root and logs in as root). Call `stop()` when done: it ends the
/// sshds this fleet started, by PID.
public final class SSHFleet: @unchecked Sendable {
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
    }

    public let directory: URL
    public let builders: [Builder]
    /// Client ssh_config with a `Host builderN` block per builder.
    public let sshConfig: String
    public let knownHosts: String
    /// Client private keys (both in every builder's authorized_keys).
    public let clientKey: String
    public let clientECDSAKey: String
    /// A key no builder accepts.
    public let strangerKey: String
    private let lock = NSLock()
    private var processes: [SpawnedProcess]

    /// `NIX_SSHOPTS` for real Nix.
    public var nixSSHOpts: String { "-F \(sshConfig)" }

    public static var canRun: Bool { PeerFixtures.which("sshd") != nil && PeerFixtures.which("ssh-keygen") != nil && getuid() == 0 }

    /// Starts `count` builders. `extraNixConf` lines go into every builder's nix.conf;
    /// `extraHostKeyTypes` (e.g. ["ecdsa"]) gives each sshd more host keys besides ed25519.
    /// `roots[i]`, when given, is a Debian root (`NixVersions.nix226Root`) whose own sshd
    /// and Nix serve builder i+1, through scripts/in-root with the builder's folder bound in.
    public init(count: Int, extraNixConf: [String] = [], extraHostKeyTypes: [String] = [],
                roots: [String?] = []) throws {
        directory = try PeerFixtures.temporaryDirectory("nb-fleet")
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
        var builders: [Builder] = []
        var knownLines = "", configText = ""
        processes = []
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
            try (["store = local?root=\(b)/store", "sandbox = false"] + extraNixConf)
                .joined(separator: "\n").appending("\n")
                .write(toFile: "\(b)/nixconf/nix.conf", atomically: true, encoding: .utf8)
            let hostKeys = ["\(b)/host_ed25519"] + extraHostKeyTypes.map { "\(b)/host_\($0)" }
            let (sshd, port) = try Self.startSSHD(dir: b, hostKeys: hostKeys, root: i <= roots.count ? roots[i - 1] : nil)
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
              ControlMaster no
              LogLevel ERROR

            """
            builders.append(Builder(name: name, port: port, storeRoot: "\(b)/store", nixConfDir: "\(b)/nixconf",
                                    home: "\(b)/home", hostKeyLine: hostLine,
                                    hostKeyBase64: Base64.encode(Array(hostLine.utf8)), extraHostKeyLines: extraLines))
        }
        self.builders = builders
        try knownLines.write(toFile: knownHosts, atomically: true, encoding: .utf8)
        try configText.write(toFile: sshConfig, atomically: true, encoding: .utf8)
    }

    /// Starts sshd for builder directory `b` on a free port, trying other ports when another
    /// process takes the chosen one first. Returns once it accepts connections.
    static func startSSHD(dir b: String, hostKeys: [String], root: String? = nil) throws -> (SpawnedProcess, Int) {
        for _ in 0..<8 {
            let port = try freeLoopbackPort()
            try """
            ListenAddress 127.0.0.1
            Port \(port)
            \(hostKeys.map { "HostKey \($0)" }.joined(separator: "\n"))
            AuthorizedKeysFile \(b)/authorized_keys
            PidFile none
            UsePAM no
            StrictModes no
            PermitRootLogin prohibit-password
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PrintMotd no
            PrintLastLog no
            MaxStartups 100:30:200
            MaxSessions 100
            SetEnv NIX_CONF_DIR=\(b)/nixconf HOME=\(b)/home

            """.write(toFile: "\(b)/sshd_config", atomically: true, encoding: .utf8)
            // sshd needs an absolute path to re-execute itself.
            let command = ["-D", "-f", "\(b)/sshd_config", "-E", "\(b)/sshd.log"]
            let sshd = try SpawnedProcess(root.map { NixVersions.inRoot($0, binds: [b], ["/usr/sbin/sshd"] + command) }
                                          ?? [PeerFixtures.which("sshd") ?? "/usr/sbin/sshd"] + command)
            if waitListening(port: port, timeout: 10, while: { sshd.isRunning }), sshd.isRunning { return (sshd, port) }
            sshd.stop()
        }
        throw FleetError(message: "sshd did not start; see \(b)/sshd.log")
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

    deinit { stop() }

    /// Runs `ssh -F sshConfig <builder> <command>` with OpenSSH's client.
    @discardableResult
    public func ssh(_ builder: Int, _ command: String, input: Data? = nil, check: Bool = true) throws -> PeerFixtures.Output {
        try PeerFixtures.run(["ssh", "-F", sshConfig, builders[builder - 1].name, command], input: input, check: check)
    }

    public struct FleetError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    static func keygen(type: String, path: String, comment: String) throws {
        try PeerFixtures.run(["ssh-keygen", "-q", "-t", type, "-N", "", "-C", comment, "-f", path])
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range
    /// (so outgoing connections of parallel tests cannot take it meanwhile).
    public static func freeLoopbackPort() throws -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20000..<32000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            let ok = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if ok { return port }
        }
        return try ephemeralLoopbackPort()
    }

    static func ephemeralLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FleetError(message: "socket: \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { throw FleetError(message: "bind: \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// True once something accepts TCP connections on 127.0.0.1:port.
    public static func waitListening(port: Int, timeout: Double, while alive: () -> Bool = { true }) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && alive() {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            let rc = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if rc == 0 { return true }
            usleep(20_000)
        }
        return false
    }
}
