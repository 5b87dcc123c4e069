import Foundation
import NixCore
import TestSupport
import Testing

/// `nix-bridge serve --http` with its narinfo cache on a small tmpfs: a disk full before it
/// starts is an error naming the file; a disk that fills while it serves is a warning naming
/// it, and the paths are still served (from the builders, uncached).
@Suite("nix-bridge serve --http with a full narinfo cache disk", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class ServeCacheDiskTests {
    let env: Fleet
    let key: SigningKey
    let closure: StoreFixture
    let small: SmallDisk
    var disk: URL { small.directory }
    let log: String

    init() throws {
        env = try Fleet(count: 1, label: "nb-cache-disk")
        key = try SigningKey.generate(name: "builder1-1", in: env.work)
        closure = try StoreFixture.closure(size: 30, rootName: "cache-disk-root", seed: 91)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: closure, signWith: key)
        small = try SmallDisk(bytes: 256 << 10, on: env.work.appendingPathComponent("cachefs"))
        log = env.work.appendingPathComponent("serve.log").path
    }

    deinit { small.unmount() }

    var cacheFile: String { disk.appendingPathComponent("narinfo.sqlite").path }

    func start() throws -> SpawnedProcess {
        let binary = try #require(CLI.binary)
        return try SpawnedProcess([binary, "serve", "--http", "127.0.0.1:0", "--builders", "ssh-ng://builder1 x86_64-linux",
                                   "--option", "trusted-public-keys", key.publicKey, "--narinfo-cache", cacheFile],
                                  logFile: log, environment: env.environment)
    }

    func url(_ process: SpawnedProcess) throws -> String? {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("http://") }) { return String(line) }
            if !process.isRunning { return nil }
            usleep(50_000)
        }
        return nil
    }

    func fill() { try? small.fill() }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    @Test func aDiskThatFillsWhileServingIsAWarningAndPathsAreStillServed() throws {
        let server = try start()
        defer { server.stop() }
        let base = try #require(try url(server), "serve did not start: \(logText)")
        fill()
        for path in closure.paths {
            let out = try TestSupport.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "\(base)/\(path.hashPart).narinfo"])
            #expect(out.text == "200", "\(StoreDirectory.default.print(path)): \(out.text)")
        }
        let text = logText
        #expect(text.contains("warning: answers are not cached"), "\(text)")
        #expect(text.contains(cacheFile), "\(text)")
        #expect(text.components(separatedBy: "warning: answers are not cached").count - 1 == 1, "warned once: \(text)")
    }

    @Test func aDiskFullBeforeStartIsAnErrorNamingTheFile() throws {
        fill()
        let server = try start()
        defer { server.stop() }
        #expect(try url(server) == nil, "serve started on a full disk")
        let text = logText
        #expect(text.contains("error:") && text.contains(cacheFile) && text.contains("disk is full"), "\(text)")
    }
}
