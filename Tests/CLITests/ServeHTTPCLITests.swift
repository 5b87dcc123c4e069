import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge serve --http` as a user runs it: the fleet from nix.conf options, served on
/// loopback, used by the real nix CLI as a substituter.
@Suite("nix-bridge serve --http", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class ServeHTTPCLITests {
    let env: Fleet
    let key1, key2, ours: SigningKey
    let closure: StoreFixture
    let log: String

    init() throws {
        env = try Fleet(count: 2, label: "nb-cli-fleet")
        key1 = try SigningKey.generate(name: "builder1-1", in: env.work)
        key2 = try SigningKey.generate(name: "builder2-1", in: env.work)
        ours = try SigningKey.generate(name: "bridge-1", in: env.work)
        closure = try StoreFixture.closure(size: 4, rootName: "cli-serve-root", seed: 71)
        // Only builder 2 holds the closure.
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot),
                                    fixture: try StoreFixture.make(count: 1, seed: 72, namePrefix: "cli-serve-other"),
                                    signWith: key1)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(2).storeRoot), fixture: closure, signWith: key2)
        log = env.work.appendingPathComponent("serve.log").path
    }

    /// Starts `nix-bridge serve --http 127.0.0.1:0` and returns it with the URL it printed.
    func serve(_ extra: [String] = []) throws -> (SpawnedProcess, String) {
        let binary = try #require(CLI.binary)
        let args = [binary, "serve", "--http", "127.0.0.1:0",
                    "--builders", "ssh-ng://builder1 x86_64-linux ; ssh-ng://builder2 x86_64-linux",
                    "--option", "trusted-public-keys", "\(key1.publicKey) \(key2.publicKey)",
                    "--narinfo-cache", env.work.appendingPathComponent("narinfo.sqlite").path] + extra
        let process = try SpawnedProcess(args, logFile: log, environment: env.environment)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("http://") }) {
                return (process, String(line))
            }
            usleep(50_000)
        }
        process.stop()
        throw SigningFixtures.Failure("serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// Listening TCP sockets on `port` as /proc/net/tcp{,6} shows them (hex local addresses).
    func listeners(port: Int) throws -> [String] {
        var out: [String] = []
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ")
                guard f.count > 3, f[3] == "0A" else { continue } // LISTEN
                let local = f[1].split(separator: ":")
                if local.count == 2, Int(local[1], radix: 16) == port { out.append(String(local[0])) }
            }
        }
        return out
    }

    @Test func servesTheFleetToNixOnLoopbackOnly() throws {
        let secret = ours.secretKeyFile.path
        let (server, url) = try serve(["--option", "secret-key-files", secret])
        defer { server.stop() }
        let port = try #require(Int(url.split(separator: ":").last ?? ""))
        #expect(url == "http://127.0.0.1:\(port)")
        #expect(try listeners(port: port) == ["0100007F"], "bound to 127.0.0.1 only")

        let root = StoreDirectory.default.print(try #require(closure.roots.first))
        let info = try env.nix(["path-info", "--json", "--sigs", "--store", url, root], check: false)
        #expect(info.status == 0, "\(info.stderr)")
        let served = try #require(try PathInfoJSON.parse(info.stdout).first)
        let builder = try env.nix(["path-info", "--json", "--sigs", "--store", env.localStore(2), root])
        let expected = try #require(try PathInfoJSON.parse(builder.stdout).first)
        #expect(served.narHash == expected.narHash && served.narSize == expected.narSize)
        #expect(served.references == expected.references)
        #expect(served.sigs.isSuperset(of: expected.sigs))
        #expect(served.sigs.contains { $0.hasPrefix("bridge-1:") })

        // A fresh store, substituting through the cache and trusting only nix-bridge's key.
        let dest = try FixtureStore.scratchDirectory("nb-cli-serve-dest")
        defer { try? FileManager.default.removeItem(at: dest) }
        let realise = try TestSupport.run(["nix-store", "--store", "local?root=\(dest.path)", "-r", root,
                                           "--option", "substituters", url,
                                           "--option", "trusted-public-keys", ours.publicKey],
                                          environment: env.environment, check: false)
        #expect(realise.status == 0, "\(realise.stderr)")
        let verify = try TestSupport.run(["nix-store", "--store", "local?root=\(dest.path)", "--verify", "--check-contents"],
                                         environment: env.environment, check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        let copied = try env.nix(["path-info", "--json", "--all", "--store", "local?root=\(dest.path)"])
        #expect(Set(try PathInfoJSON.parse(copied.stdout).map(\.path)) == Set(closure.paths))

        server.stop()
        #expect(!server.isRunning, "SIGTERM stops the server")
    }

    @Test func rejectsABadAddress() throws {
        let r = try env.bridge(["serve", "--http", "127.0.0.1", "--builders", "ssh-ng://builder1"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("'--http' expects ADDR:PORT"), "\(r.stderr)")
    }
}
