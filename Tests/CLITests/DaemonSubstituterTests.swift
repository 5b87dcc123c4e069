import Foundation
import NixCore
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The fleet behind a multi-user Nix install, set up as Docs/Setup.md says: a root
/// `nix-daemon` on its own socket and store with `max-jobs = 0`, the fleet as `builders` and
/// `ssh-ng://localhost?remote-program=nix-bridge` as its only substituter, `nix-bridge serve`
/// on the default `bridge-socket` beside the daemon's socket, and a user outside
/// `trusted-users` running `nix-build` and `nix build` through the daemon.
@Suite("a nix-daemon with the bridge as substituter, used by a plain user", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI),
       .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && CLI.isBuilt, "needs nix (nix-bin), sshd, root and a built nix-bridge"),
       .enabled(if: DaemonSetup.user != nil || TestSupport.peersRequired, "needs the user nixbridge-user (scripts/bootstrap adds it)"))
struct DaemonSubstituterTests {
    @Test("Nix 2.8's daemon: held outputs and their dependencies are fetched, a miss is built remotely")
    func nix28() throws {
        try check(root: nil)
    }

    @Test("Nix 2.26's daemon and clients (Debian 13 root), the same",
          .enabled(if: NixVersions.nix226Root != nil || NixVersions.nix226Required,
                   Comment(rawValue: NixVersions.nix226Unavailable ?? "")))
    func nix226() throws {
        let root = try #require(NixVersions.nix226Root, Comment(rawValue: NixVersions.nix226Unavailable ?? ""))
        try check(root: root)
    }

    func check(root: String?) throws {
        let s = try DaemonSetup(root: root)
        defer { s.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        let f = s.fleet
        let dep = f.expression(name: "dep-\(tag)", script: "echo dep-\(tag) > $out")
        let top = f.expression(name: "top-\(tag)", script: "read l < ${dep}; echo \"$l top ${dep}\" > $out")
        let other = f.expression(name: "other-\(tag)", script: "echo other-\(tag) > $out")
        let miss = f.expression(name: "miss-\(tag)", script: "read l < ${dep}; echo \"$l miss ${dep}\" > $out")
        let held = "let dep = \(dep); in \(top)"
        let topOut = try f.buildOnBuilder(1, expression: held)
        let otherOut = try f.buildOnBuilder(2, expression: other)
        let depOut = try f.buildOnBuilder(1, expression: dep)
        let builds = f.buildCount(1) + f.buildCount(2)

        // nix-build: the output builder1 holds, and the dependency it refers to, come from the fleet.
        let built = try s.asUser(["nix-build", "--no-out-link", try s.file("held.nix", held)])
        #expect(built.status == 0, "\(built.stderr)\n\(s.logs)")
        #expect(built.trimmed == topOut)
        #expect(s.daemonHas(topOut) && s.daemonHas(depOut))
        #expect(try s.daemonSigs(topOut).contains("builder1-1:"))
        #expect(try s.daemonSigs(depOut).contains("builder1-1:"))
        // nix build (the new CLI): builder2's output.
        let newCLI = try s.asUser(["nix", "--extra-experimental-features", "nix-command", "build", "--no-link",
                                   "-f", try s.file("other.nix", other)])
        #expect(newCLI.status == 0, "\(newCLI.stderr)\n\(s.logs)")
        #expect(s.daemonHas(otherOut))
        #expect(try s.daemonSigs(otherOut).contains("builder2-1:"))
        #expect(f.buildCount(1) + f.buildCount(2) == builds, "nothing was built")
        #expect(s.service.isRunning)
        #expect(s.serviceClients > 0, "the daemon's substitutions went through the service: \(s.logs)")

        // A miss: built by a builder (the daemon builds nothing itself), signed by it.
        let missed = try s.asUser(["nix-build", "--no-out-link", try s.file("miss.nix", "let dep = \(dep); in \(miss)")])
        #expect(missed.status == 0, "\(missed.stderr)\n\(s.logs)")
        let missOut = missed.trimmed
        #expect(missOut.hasSuffix("-miss-\(tag)"))
        #expect(f.buildCount(1) + f.buildCount(2) == builds + 1)
        #expect(s.daemonHas(missOut))
        #expect(try s.daemonSigs(missOut).contains(f.builderHas(1, missOut) ? "builder1-1:" : "builder2-1:"))

        // The user is not trusted: Nix 2.26 says so (protocol 1.35's trusted flag); Nix 2.8's
        // daemon refuses what only a trusted user may do. (2.26's daemon takes AddSignatures
        // from an untrusted user.)
        if root != nil {
            let info = try s.asUser(["nix", "--extra-experimental-features", "nix-command", "store", "info"])
            #expect((info.text + info.stderr).contains("Trusted: 0"), "\(info.text)\(info.stderr)")
        } else {
            let sign = try s.asUser(["nix", "--extra-experimental-features", "nix-command", "store", "sign",
                                     "--key-file", s.userKey, topOut])
            #expect(sign.status != 0 && sign.stderr.contains("you are not privileged"), "\(sign.stderr)")
        }
    }
}

/// Builders, a root nix-daemon configured as Docs/Setup.md says, the service, and the user.
final class DaemonSetup: @unchecked Sendable {
    static let userName = "nixbridge-user"
    static var user: (uid: uid_t, gid: gid_t)? {
        guard let pw = getpwnam(userName) else { return nil }
        return (pw.pointee.pw_uid, pw.pointee.pw_gid)
    }

    let fleet: Fleet
    let root: String?
    let dir: URL
    let daemon: SpawnedProcess
    let service: SpawnedProcess
    let daemonStore: String
    let userKey: String
    let environment: [String: String]
    var binds: [String] { [fleet.directory.path, fleet.work.path, "/opt/swift", CLI.binaryDirectory] }

    init(root: String?) throws {
        let binary = try #require(CLI.binary)
        fleet = try Fleet(features: [[], []], label: "nb-daemon")
        self.root = root
        dir = fleet.work
        // The user reaches the daemon's socket and its own files under the work directory.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let etc = dir.appendingPathComponent("etc-nix"), state = dir.appendingPathComponent("state")
        daemonStore = dir.appendingPathComponent("daemon-store").path
        for d in [etc, state] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try FileManager.default.createDirectory(atPath: daemonStore + "/nix/store", withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o1775], ofItemAtPath: daemonStore + "/nix/store")
        // /etc/nix/nix.conf as Docs/Setup.md writes it (plus the test's own store and state).
        try """
            store = local?root=\(daemonStore)
            max-jobs = 0
            builders = @\(fleet.machinesFile)
            substituters = ssh-ng://localhost?remote-program=\(binary)
            trusted-public-keys = \(fleet.trustedPublicKeys)
            trusted-users = root
            build-users-group = nixbld
            sandbox = false

            """.write(to: etc.appendingPathComponent("nix.conf"), atomically: true, encoding: .utf8)
        environment = [
            "NIX_CONF_DIR": etc.path, "NIX_USER_CONF_FILES": etc.appendingPathComponent("nix.conf").path,
            "NIX_STATE_DIR": state.path, "NIX_SSHOPTS": fleet.nixSSHOpts,
            "HOME": dir.appendingPathComponent("root-home").path,
            "XDG_CACHE_HOME": dir.appendingPathComponent("root-cache").path,
            "NIX_BRIDGE_STATS": dir.appendingPathComponent("service.stats").path,
        ]
        let home = dir.appendingPathComponent("user-home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        userKey = home.appendingPathComponent("user.sec").path
        try PeerFixtures.run(["nix-store", "--generate-binary-cache-key", "user-1", userKey, userKey + ".pub"])
        let user = try #require(Self.user)
        _ = chown(home.path, user.uid, user.gid)
        _ = chown(userKey, user.uid, user.gid)

        // The service, on the default bridge-socket: $NIX_STATE_DIR/bridge-socket/socket.
        let socket = state.appendingPathComponent("bridge-socket/socket").path
        service = try SpawnedProcess([binary, "serve"], logFile: dir.appendingPathComponent("service.log").path,
                                     environment: environment)
        let daemonCommand = ["/usr/bin/nix-daemon"]
        let daemonLog = dir.appendingPathComponent("daemon.log").path
        if let root {
            daemon = try SpawnedProcess(NixVersions.inRoot(root, binds: [fleet.directory.path, dir.path, "/opt/swift",
                                                                         CLI.binaryDirectory],
                                                            ["/usr/bin/env"] + environment.map { "\($0.key)=\($0.value)" }
                                                            + daemonCommand),
                                        logFile: daemonLog)
        } else {
            daemon = try SpawnedProcess(daemonCommand, logFile: daemonLog, environment: environment)
        }
        let daemonSocket = state.appendingPathComponent("daemon-socket/socket").path
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !(FileManager.default.fileExists(atPath: socket) && FileManager.default.fileExists(atPath: daemonSocket)) {
            guard service.isRunning, daemon.isRunning else { break }
            usleep(50_000)
        }
        guard FileManager.default.fileExists(atPath: socket), FileManager.default.fileExists(atPath: daemonSocket) else {
            stop()
            throw SigningFixtures.Failure("the service or the daemon did not start: \(logs)")
        }
    }

    func stop() {
        service.stop()
        daemon.stop()
        fleet.stop()
    }

    var logs: String {
        ["service.log", "daemon.log"].map { name in
            "\(name):\n" + ((try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? "")
        }.joined(separator: "\n")
    }

    /// How many clients the service has served (from its NIX_BRIDGE_STATS line).
    var serviceClients: Int {
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

    func file(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
        return url.path
    }

    /// Runs `command` as the plain user, with only what a user's shell has: the daemon
    /// (NIX_REMOTE=daemon, its socket under NIX_STATE_DIR) and an empty nix.conf of its own.
    func asUser(_ command: [String]) throws -> TestSupport.Output {
        let user = try #require(Self.user)
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

    func daemonHas(_ path: String) -> Bool {
        (try? PeerFixtures.run(["nix-store", "--store", "local?root=\(daemonStore)", "--check-validity", path],
                               check: false).status) == 0
    }

    func daemonSigs(_ path: String) throws -> String {
        try TestSupport.nix(["path-info", "--sigs", "--store", "local?root=\(daemonStore)", path]).text
    }
}
