import Foundation
import TestSupport
import Testing

/// A real `nix-daemon` on a private socket that does not trust us (`trusted-users = nobody`):
/// `nix-daemon --stdio` over ssh-ng always trusts its streams, so only a socket daemon can
/// show what an untrusted user sees.
@Suite("nix-bridge against an untrusting nix-daemon", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && getuid() == 0, "needs nix (nix-bin) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class UntrustedCLITests {
    let work: URL
    let storeRoot: String
    let socket: String
    let daemon: SpawnedProcess
    let environment: [String: String]

    init() throws {
        work = try TestSupport.temporaryDirectory("nb-cli-untrusted")
        storeRoot = work.appendingPathComponent("store").path
        socket = work.appendingPathComponent("daemon.sock").path
        let daemonConf = work.appendingPathComponent("daemon-conf"), clientConf = work.appendingPathComponent("client-conf")
        for d in [daemonConf, clientConf] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try Data("store = local?root=\(storeRoot)\ntrusted-users = nobody\nallowed-users = *\nsandbox = false\n".utf8)
            .write(to: daemonConf.appendingPathComponent("nix.conf"))
        try Data().write(to: clientConf.appendingPathComponent("nix.conf"))
        environment = ["NIX_CONF_DIR": clientConf.path, "NIX_USER_CONF_FILES": clientConf.appendingPathComponent("nix.conf").path]
        let nixDaemon = try #require(TestSupport.which("nix-daemon"))
        daemon = try SpawnedProcess([nixDaemon], logFile: work.appendingPathComponent("daemon.log").path,
                                    environment: ["NIX_CONF_DIR": daemonConf.path, "NIX_DAEMON_SOCKET_PATH": socket,
                                                  "NIX_USER_CONF_FILES": daemonConf.appendingPathComponent("nix.conf").path])
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket), Date() < deadline, daemon.isRunning { usleep(20_000) }
        try #require(FileManager.default.fileExists(atPath: socket), "nix-daemon did not create \(socket)")
    }

    deinit {
        daemon.stop()
        try? FileManager.default.removeItem(at: work)
    }

    func bridge(_ args: [String]) throws -> TestSupport.Output {
        guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        return try TestSupport.run([binary] + args, environment: environment, check: false)
    }

    @Test func pingSaysUntrusted() throws {
        let out = try bridge(["ping", "--store", "unix://\(socket)"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.text.contains("Version: 2.8.0\n"))
        #expect(out.text.contains("Trusted: 0\n"), "\(out.text)")
        #expect(out.stderr.contains("warning: the remote user is not in the builder's 'trusted-users'"), "\(out.stderr)")
    }

    @Test func signRefusedNamesTheStore() throws {
        let file = work.appendingPathComponent("f.txt")
        try Data("sign me\n".utf8).write(to: file)
        let path = try TestSupport.run(["nix-store", "--store", "local?root=\(storeRoot)", "--add", file.path]).trimmed
        let keys = try SigningKey.generate(name: "nb-untrusted", in: work)
        let out = try bridge(["key", "sign", "--store", "unix://\(socket)", "-k", keys.secretKeyFile.path, path])
        #expect(out.status == 1)
        #expect(out.stderr == "error: you are not privileged to add signatures to 'unix://\(socket)' (the remote user must be in the store's 'trusted-users')\n")
        // path-info needs no trust.
        let info = try bridge(["path-info", "--store", "unix://\(socket)", path])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.text == path + "\n")
        #expect(daemon.isRunning)
    }
}
