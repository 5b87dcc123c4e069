import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Builders behind a multi-user Nix install, set up as Docs/Setup.md says: a root
/// `nix-daemon` on its own socket and store with `max-jobs = 0` and the fleet as `builders`,
/// `nix-bridge serve` on the default `bridge-socket` beside the daemon's socket, and a user
/// outside `trusted-users` (`nixbridge-user`, which scripts/bootstrap adds) who reaches only
/// the daemon. The daemon's substituters default to the bridge
/// (`ssh-ng://localhost?remote-program=nix-bridge`); the benchmark also gives it the builders.
public final class DaemonFleet: @unchecked Sendable {
    public static let userName = "nixbridge-user"
    public static var user: (uid: uid_t, gid: gid_t)? {
        guard let pw = getpwnam(userName) else { return nil }
        return (pw.pointee.pw_uid, pw.pointee.pw_gid)
    }

    public let fleet: Fleet
    public let root: String?
    public let dir: URL
    public private(set) var daemon: SpawnedProcess
    private let binary: String
    private let etc: URL
    public let service: SpawnedProcess
    public let daemonStore: String
    public let userKey: String
    public let environment: [String: String]

    /// `binary` is the nix-bridge executable; `root` a Debian 13 root whose Nix 2.26 runs the
    /// daemon and the user's commands (nil: this machine's Nix); `substituters` the daemon's
    /// line (nil: the bridge alone).
    public init(binary: String, builders: Int = 2, root: String? = nil, substituters: String? = nil,
                label: String = "nb-daemon") throws {
        guard let user = Self.user else { throw SigningFixtures.Failure("no user \(Self.userName) (scripts/bootstrap adds it)") }
        fleet = try Fleet(features: Array(repeating: [], count: builders), label: label)
        self.root = root
        dir = fleet.work
        // The user reaches the daemon's socket and its own files under the work directory.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let etc = dir.appendingPathComponent("etc-nix"), state = dir.appendingPathComponent("state")
        daemonStore = dir.appendingPathComponent("daemon-store").path
        for d in [etc, state] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try FileManager.default.createDirectory(atPath: daemonStore + "/nix/store", withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o1775], ofItemAtPath: daemonStore + "/nix/store")
        environment = [
            "NIX_CONF_DIR": etc.path, "NIX_USER_CONF_FILES": etc.appendingPathComponent("nix.conf").path,
            "NIX_STATE_DIR": state.path, "NIX_SSHOPTS": fleet.nixSSHOpts,
            "HOME": dir.appendingPathComponent("root-home").path,
            "XDG_CACHE_HOME": dir.appendingPathComponent("root-cache").path,
            "NIX_BRIDGE_STATS": dir.appendingPathComponent("service.stats").path,
        ]
        self.binary = binary
        self.etc = etc
        try Self.writeConf(etc, store: daemonStore, fleet: fleet, binary: binary, substituters: substituters)
        let home = dir.appendingPathComponent("user-home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        userKey = home.appendingPathComponent("user.sec").path
        try PeerFixtures.run(["nix-store", "--generate-binary-cache-key", "user-1", userKey, userKey + ".pub"])
        _ = chown(home.path, user.uid, user.gid)
        _ = chown(userKey, user.uid, user.gid)

        // The service, on the default bridge-socket: $NIX_STATE_DIR/bridge-socket/socket.
        service = try SpawnedProcess([binary, "serve"], logFile: dir.appendingPathComponent("service.log").path,
                                     environment: environment)
        daemon = try Self.startDaemon(root: root, environment: environment, binds: [fleet.directory.path, dir.path, "/opt/swift", Self.directory(of: binary)],
                                      log: dir.appendingPathComponent("daemon.log").path)
        try waitForSockets(service: true)
    }

    /// /etc/nix/nix.conf as Docs/Setup.md writes it (plus the fixture's own store and state).
    private static func writeConf(_ etc: URL, store daemonStore: String, fleet: Fleet, binary: String, substituters: String?) throws {
        try """
            store = local?root=\(daemonStore)
            max-jobs = 0
            builders = @\(fleet.machinesFile)
            substituters = \(substituters ?? "ssh-ng://localhost?remote-program=\(binary)")
            trusted-public-keys = \(fleet.trustedPublicKeys)
            trusted-users = root
            build-users-group = nixbld
            sandbox = false

            """.write(to: etc.appendingPathComponent("nix.conf"), atomically: true, encoding: .utf8)
    }

    private static func startDaemon(root: String?, environment: [String: String], binds: [String], log: String) throws -> SpawnedProcess {
        let command = ["/usr/bin/nix-daemon"]
        guard let root else { return try SpawnedProcess(command, logFile: log, environment: environment) }
        return try SpawnedProcess(NixVersions.inRoot(root, binds: binds, ["/usr/bin/env"] + environment.map { "\($0.key)=\($0.value)" } + command),
                                  logFile: log)
    }

    private var daemonSocket: String { environment["NIX_STATE_DIR"]! + "/daemon-socket/socket" }
    private var serviceSocket: String { environment["NIX_STATE_DIR"]! + "/bridge-socket/socket" }

    private func waitForSockets(service withService: Bool) throws {
        let sockets = withService ? [serviceSocket, daemonSocket] : [daemonSocket]
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !sockets.allSatisfy(FileManager.default.fileExists(atPath:)) {
            guard service.isRunning, daemon.isRunning else { break }
            usleep(50_000)
        }
        guard sockets.allSatisfy(FileManager.default.fileExists(atPath:)) else {
            stop()
            throw SigningFixtures.Failure("the service or the daemon did not start: \(logs)")
        }
    }

    /// Stops the daemon, empties its store and starts it again with `substituters` (nil: the
    /// bridge alone): a fresh multi-user install, the builders and the service kept.
    public func restartDaemon(substituters: String?) throws {
        daemon.stop()
        try? FileManager.default.removeItem(atPath: daemonSocket)
        try FileManager.default.removeItem(atPath: daemonStore)
        try FileManager.default.createDirectory(atPath: daemonStore + "/nix/store", withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o1775], ofItemAtPath: daemonStore + "/nix/store")
        try Self.writeConf(etc, store: daemonStore, fleet: fleet, binary: binary, substituters: substituters)
        daemon = try Self.startDaemon(root: root, environment: environment, binds: [fleet.directory.path, dir.path, "/opt/swift", Self.directory(of: binary)],
                                      log: dir.appendingPathComponent("daemon.log").path)
        try waitForSockets(service: false)
    }

    private static func directory(of binary: String) -> String {
        URL(fileURLWithPath: binary).resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    public func stop() {
        service.stop()
        daemon.stop()
        fleet.stop()
    }

    public var logs: String {
        ["service.log", "daemon.log"].map { name in
            "\(name):\n" + ((try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? "")
        }.joined(separator: "\n")
    }

    /// How many clients the service has served (from its NIX_BRIDGE_STATS line).
    public var serviceClients: Int {
        // The file is rewritten in place every 50 ms: a read may find it empty.
        for _ in 0..<40 {
            let n = serviceClientsNow
            if n > 0 { return n }
            usleep(50_000)
        }
        return 0
    }

    private var serviceClientsNow: Int {
        let text = (try? String(contentsOfFile: environment["NIX_BRIDGE_STATS"]!, encoding: .utf8)) ?? ""
        guard let words = text.split(separator: ";").last?.split(separator: " "), let n = words.first.flatMap({ Int($0) }) else { return 0 }
        return n
    }

    /// Writes a file the user can read; returns its path.
    public func file(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
        return url.path
    }

    /// Runs `command` as the plain user, with only what a user's shell has: the daemon
    /// (NIX_REMOTE=daemon, its socket under NIX_STATE_DIR) and an empty nix.conf of its own.
    public func asUser(_ command: [String]) throws -> PeerFixtures.Output {
        guard let user = Self.user else { throw SigningFixtures.Failure("no user \(Self.userName)") }
        let home = dir.appendingPathComponent("user-home").path
        let userConf = dir.appendingPathComponent("user-nix.conf").path
        if !FileManager.default.fileExists(atPath: userConf) { try Data().write(to: URL(fileURLWithPath: userConf)) }
        let line = ["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups",
                    "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=\(home)", "NIX_REMOTE=daemon",
                    "NIX_STATE_DIR=\(environment["NIX_STATE_DIR"]!)", "NIX_CONF_DIR=\(home)",
                    "NIX_USER_CONF_FILES=\(userConf)"] + command
        if let root {
            // As on a multi-user install, the user sees the daemon's store at /nix/store (Nix
            // 2.26's nix-build reads the derivations it instantiated from there).
            return try PeerFixtures.run(NixVersions.inRoot(root, binds: [dir.path, daemonStore + "/nix/store:/nix/store"], line),
                                        check: false)
        }
        return try PeerFixtures.run(line, check: false)
    }

    public func daemonHas(_ path: String) -> Bool {
        (try? PeerFixtures.run(["nix-store", "--store", "local?root=\(daemonStore)", "--check-validity", path],
                               check: false).status) == 0
    }

    public func daemonSigs(_ path: String) throws -> String {
        try PeerFixtures.nix(["path-info", "--sigs", "--store", "local?root=\(daemonStore)", path]).text
    }
}
