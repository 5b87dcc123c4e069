import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge serve --socket` as the long-running service, and `nix-bridge --stdio` relaying
/// to it, used by the real Nix 2.8 client as an ssh-ng store: builder connections are opened
/// once and shared by every client, re-opened when they break; SIGHUP reloads the trust;
/// SIGTERM removes the socket, after which `--stdio` serves alone again.
@Suite("nix-bridge serve --socket", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class ServiceTests {
    let f: StdioScenario
    let socket: String
    /// The running service's stdout and stderr (a new file for each start).
    var log: String
    /// One line per SSH login to a builder (its remote-program writes it).
    let logins: String
    let serviceConf: URL
    /// `remote-program` that only relays: its own nix.conf names no builder.
    let relay: String
    /// `remote-program` that relays, and serves alone with the fleet when no service answers.
    let relayOrAlone: String

    init() throws {
        f = try StdioScenario()
        let w = f.env.work
        socket = w.appendingPathComponent("bridge-socket/socket").path
        log = w.appendingPathComponent("service.log").path
        logins = w.appendingPathComponent("logins").path
        let counter = w.appendingPathComponent("count-logins").path
        try Data("#!/bin/sh\necho login >> '\(logins)'\nexec nix-daemon \"$@\"\n".utf8).write(to: URL(fileURLWithPath: counter))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: counter)
        serviceConf = w.appendingPathComponent("service.conf")
        try FileManager.default.createDirectory(at: serviceConf, withIntermediateDirectories: true)
        relay = try StdioScenario.wrapper(in: w, name: "relay", conf: "builders =\nbridge-socket = \(socket)",
                                       sshOpts: f.env.nixSSHOpts)
        relayOrAlone = try StdioScenario.wrapper(in: w, name: "relay-or-alone", conf: """
            builders = ssh-ng://builder1 x86_64-linux ; ssh-ng://builder2 x86_64-linux
            trusted-public-keys = \(f.key1.publicKey) \(f.key2.publicKey)
            bridge-socket = \(socket)
            """, sshOpts: f.env.nixSSHOpts)
        try writeServiceConf(trusted: [f.key1.publicKey, f.key2.publicKey])
    }

    func writeServiceConf(trusted: [String]) throws {
        let counter = f.env.work.appendingPathComponent("count-logins").path
        try Data("""
            builders = ssh-ng://builder1?remote-program=\(counter) x86_64-linux ; ssh-ng://builder2?remote-program=\(counter) x86_64-linux
            trusted-public-keys = \(trusted.joined(separator: " "))

            """.utf8).write(to: serviceConf.appendingPathComponent("nix.conf"))
    }

    var loginCount: Int { ((try? String(contentsOfFile: logins, encoding: .utf8)) ?? "").split(separator: "\n").count }
    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Starts `nix-bridge serve --socket SOCKET ARGS` and waits for the `unix://` line.
    func startService(_ extra: [String] = []) throws -> SpawnedProcess {
        let binary = try #require(CLI.binary)
        log = f.env.work.appendingPathComponent("service-\(UUID().uuidString.prefix(6)).log").path
        let env = ["NIX_CONF_DIR": serviceConf.path, "NIX_USER_CONF_FILES": serviceConf.appendingPathComponent("nix.conf").path,
                   "XDG_CACHE_HOME": f.env.work.appendingPathComponent("service.cache").path,
                   "NIX_SSHOPTS": f.env.nixSSHOpts]
        let process = try SpawnedProcess([binary, "serve", "--socket", socket] + extra, logFile: log, environment: env)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            if logText.contains("unix://\(socket)\n") { return process }
            usleep(50_000)
        }
        process.stop()
        throw SigningFixtures.Failure("serve --socket did not start: \(logText)")
    }

    func waitForLog(_ text: String) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if logText.contains(text) { return true }
            usleep(50_000)
        }
        return false
    }

    func copy(_ program: String, label: String) throws -> (TestSupport.Output, String) {
        let dest = f.scratchStore(label)
        let out = try f.env.nix(["copy", "--from", f.localURI(program), "--to", dest,
                                 "--trusted-public-keys", f.key2.publicKey, f.root], check: false)
        return (out, dest)
    }

    @Test("clients share the service's builder connections; a broken one is re-opened")
    func sharedConnections() throws {
        let service = try startService()
        defer { service.stop() }
        // Owner only, by default.
        let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let listed = try f.env.nix(["path-info", "--recursive", "--store", f.localURI(relay), f.root], check: false)
        #expect(listed.status == 0, "\(listed.stderr)\n\(logText)")
        #expect(listed.text.split(separator: "\n").count == 6, "\(listed.text)")
        let first = loginCount
        #expect(first >= 1 && first <= 2, "one login per builder asked, got \(first)")

        let (copied, dest) = try copy(relay, label: "svc-copy")
        #expect(copied.status == 0, "\(copied.stderr)\n\(logText)")
        let verify = try f.env.nix(["store", "verify", "--store", dest, "--recursive",
                                    "--trusted-public-keys", f.key2.publicKey, f.root], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        // NARs stream on connections of their own (back-pressure per transfer), as many as are
        // in flight at once, kept open for the next transfers: a first round of six concurrent
        // clients opens them; after it, three at once and one more log in no more.
        let concurrent = { (round: Int, clients: Int) throws in
            let runs = try self.f.env.runConcurrently((0..<clients).map { i in
                ["nix", "--extra-experimental-features", "nix-command", "copy", "--from", self.f.localURI(self.relay),
                 "--to", self.f.scratchStore("svc-concurrent-\(round)-\(i)"), "--trusted-public-keys", self.f.key2.publicKey,
                 self.f.root]
            })
            for r in runs { #expect(r.status == 0, "\(r.stderr)") }
        }
        try concurrent(0, 6)
        let warmed = loginCount
        try concurrent(1, 3)
        #expect(try copy(relay, label: "svc-again").0.status == 0)
        #expect(loginCount == warmed, "builder logins after 4 more clients: \(loginCount), before them: \(warmed)")

        // The builders' end of the service's connections goes away: the next client is served
        // over new ones.
        for sshd in f.env.sshdPIDs {
            for pid in ProcessTree.descendants(of: sshd) { kill(pid, SIGKILL) }
        }
        usleep(300_000)
        let (afterBreak, _) = try copy(relay, label: "svc-broken")
        #expect(afterBreak.status == 0, "\(afterBreak.stderr)\n\(logText)")
        #expect(loginCount > first)
    }

    @Test("SIGHUP reloads the trusted keys; SIGTERM removes the socket and --stdio serves alone")
    func reloadAndStop() throws {
        let service = try startService()
        var stopped = false
        defer { if !stopped { service.stop() } }
        let onBuilder1 = StoreDirectory.default.print(f.onBuilder1.paths[0])
        let before = try f.env.nix(["path-info", "--store", f.localURI(relay), onBuilder1], check: false)
        #expect(before.status == 0, "\(before.stderr)\n\(logText)")

        // builder1's key is no longer trusted: after SIGHUP its paths are not served.
        try writeServiceConf(trusted: [f.key2.publicKey])
        kill(service.pid, SIGHUP)
        #expect(waitForLog("nix-bridge: reloaded the configuration"), "\(logText)")
        let after = try f.env.nix(["path-info", "--store", f.localURI(relay), onBuilder1], check: false)
        #expect(after.status == 1 && after.stderr.contains("is not valid"), "\(after.text)\(after.stderr)")
        #expect(service.isRunning)
        #expect(try copy(relay, label: "svc-reloaded").0.status == 0)

        service.stop(signal: SIGTERM)
        stopped = true
        #expect(!service.isRunning)
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket file is removed")
        #expect(!logText.contains("error"), "\(logText)")
        // No service: the relay-only program has no fleet of its own; the other serves alone.
        let alone = try copy(relayOrAlone, label: "svc-alone")
        #expect(alone.0.status == 0, "\(alone.0.stderr)")
        let none = try f.env.nix(["path-info", "--store", f.localURI(relay), f.root], check: false)
        #expect(none.status != 0)
    }

    @Test("a socket another service listens on is refused; a stale one is replaced")
    func socketInUse() throws {
        let service = try startService()
        let binary = try #require(CLI.binary)
        let second = try TestSupport.run([binary, "serve", "--socket", socket, "--builders", "ssh-ng://builder1 x86_64-linux"],
                                         environment: f.env.environment, check: false)
        #expect(second.status == 1)
        #expect(second.stderr.contains("another process is listening on this socket"), "\(second.stderr)")
        service.stop(signal: SIGKILL)
        // Killed: its socket file stays, and the next service replaces it.
        #expect(FileManager.default.fileExists(atPath: socket))
        let next = try startService(["--socket-mode", "0660"])
        defer { next.stop() }
        let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
        #expect(mode == 0o660)
        #expect(try f.env.nix(["path-info", "--store", f.localURI(relay), f.root], check: false).status == 0)
    }
}
