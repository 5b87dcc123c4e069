import Bridge
import BridgeHTTP
import Foundation
import Logging
import NixCore
import NixSigning
import NixStore
import NixTransport
import TestSupport

/// Two real builders (sshd + nix-daemon over ssh-ng), each signing with its own key, served
/// in-process as an HTTP binary cache on 127.0.0.1 (a free port):
/// - `shared`: a 5-path closure on both builders;
/// - `only2`: a 4-path closure on builder 2 only;
/// - `large`: one 8 MiB path (or `largeMebibytes`) on builder 2 only;
/// - `unsigned`: 2 paths on builder 1 without signatures;
/// - `strangers`: 2 paths on builder 1 signed by a key nobody trusts.
/// nix-bridge signs what it serves with `bridge-1`.
final class HTTPScenario: @unchecked Sendable {
    let fleet: Fleet
    var work: URL { fleet.work }
    let key1, key2, stranger, ours: SigningKey
    let shared, only2, large, unsigned, strangers: StoreFixture
    let view: FleetView
    let cache: HTTPBinaryCache
    private(set) var port = 0
    private var server: Task<Void, any Error>?

    /// What the cache logged at warning level and above.
    let logged = LoggedLines()

    init(label: String, narInfoTTL: Duration = .seconds(60), largeMebibytes: Int = 8,
         stalledClientTimeout: Duration? = nil) throws {
        fleet = try Fleet(count: 2, label: "nb-http-\(label)")
        key1 = try SigningKey.generate(name: "builder1-1", in: fleet.work)
        key2 = try SigningKey.generate(name: "builder2-1", in: fleet.work)
        stranger = try SigningKey.generate(name: "stranger-1", in: fleet.work)
        ours = try SigningKey.generate(name: "bridge-1", in: fleet.work)
        shared = try StoreFixture.closure(size: 5, rootName: "http-shared", seed: 61)
        only2 = try StoreFixture.closure(size: 4, rootName: "http-only2", seed: 62)
        large = try StoreFixture.large(mebibytes: largeMebibytes, name: "http-large", seed: 63)
        unsigned = try StoreFixture.make(count: 2, seed: 64, namePrefix: "http-unsigned")
        strangers = try StoreFixture.make(count: 2, seed: 65, namePrefix: "http-stranger")

        let root1 = URL(fileURLWithPath: fleet.builders[0].storeRoot)
        let root2 = URL(fileURLWithPath: fleet.builders[1].storeRoot)
        let b1 = try FixtureStore.create(at: root1, fixture: shared, signWith: key1)
        var b2 = try FixtureStore.create(at: root2, fixture: shared, signWith: key2)
        try b2.add(only2)
        try b2.add(large)
        var b1Unsigned = FixtureStore(location: .chroot(root: root1), key: nil, infos: b1.infos)
        try b1Unsigned.add(unsigned)
        var b1Stranger = FixtureStore(location: .chroot(root: root1), key: stranger, infos: b1Unsigned.infos)
        try b1Stranger.add(strangers)

        var opener = StoreOpener()
        opener.sshConfig = try SSHConfig.load(path: fleet.sshConfig)
        let stores = try fleet.builders.map { try opener.store(try StoreURI(parsing: $0.storeURI)) }
        let trusted = try TrustedKeys(parsing: "\(key1.publicKey) \(key2.publicKey)")
        view = FleetView(lookup: Lookup(stores: stores, trustedKeys: trusted),
                         signingKeys: [try KeyFiles.readSecretKey(ours.secretKeyFile.path)])
        let logged = self.logged
        var logger = Logger(label: "nix-bridge.http.test") { _ in logged }
        logger.logLevel = .warning
        cache = HTTPBinaryCache(fleet: view, configuration: .init(host: "127.0.0.1", port: 0, narInfoTTL: narInfoTTL,
                                                                  stalledClientTimeout: stalledClientTimeout),
                                logger: logger)
    }

    /// Starts serving; returns once the server listens.
    func start() async throws {
        let (ports, feed) = AsyncStream<Int>.makeStream()
        let cache = self.cache
        server = Task {
            defer { feed.finish() }
            try await cache.run { feed.yield($0) }
        }
        for await p in ports {
            port = p
            return
        }
        try await server?.value
        throw SigningFixtures.Failure("the HTTP cache stopped before listening")
    }

    /// Stops the server, the builders' connections and sshds; removes the work directory.
    func stop() async {
        server?.cancel()
        _ = try? await server?.value
        for s in view.lookup.stores { await s.close() }
        fleet.stop()
        try? FileManager.default.removeItem(at: work)
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Both builders' keys (what a client of the fleet trusts).
    var builderKeys: String { "\(key1.publicKey) \(key2.publicKey)" }

    func printed(_ path: StorePath) -> String { StoreDirectory.default.print(path) }

    /// Runs a command on its own thread, so a blocking wait for a child process does not
    /// hold one of the (two) threads the server's tasks run on.
    func run(_ command: [String], input: Data? = nil, check: Bool = true) async throws -> TestSupport.Output {
        try await Self.offPool { try TestSupport.run(command, input: input, check: check) }
    }

    /// Real `nix ARGS` with nix-command, without the machine's nix.conf substituters.
    func nix(_ args: [String], check: Bool = true) async throws -> TestSupport.Output {
        try await run(["nix", "--extra-experimental-features", "nix-command", "--option", "substituters", ""] + args,
                      check: check)
    }

    /// `curl` of a cache file: (HTTP status, body). `head` sends HEAD.
    func curl(_ file: String, head: Bool = false) async throws -> (status: Int, body: Data, headers: String) {
        let headerFile = work.appendingPathComponent("headers-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: headerFile) }
        let out = try await run(["curl", "-sS", "-D", headerFile, "-w", "\n%{http_code}"] + (head ? ["-I"] : [])
                                + ["\(url)/\(file)"])
        var body = out.stdout
        let statusLine = body.lastIndex(of: UInt8(ascii: "\n")).map { body[($0 + 1)...] } ?? body[...]
        let status = Int(String(decoding: statusLine, as: UTF8.self)) ?? -1
        body = body.prefix(body.count - statusLine.count - 1)
        let headers = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        return (status, head ? Data() : body, headers)
    }

    /// A fresh chroot store directory (removed with the work directory).
    func scratchStore(_ name: String) throws -> String {
        let url = work.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// A log handler that keeps the lines (for tests that check what the server said).
final class LoggedLines: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var kept: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lock.withLock { kept.append("\(event.message)") }
    }

    var lines: [String] { lock.withLock { kept } }
}
