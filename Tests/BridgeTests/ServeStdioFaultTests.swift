import Foundation
import NixCore
import NixSigning
import NixStore
import NixTransport
import NixWire
import Synchronization
import Testing
import TestSupport
@testable import Bridge

/// The worker-protocol server (`nix-bridge --stdio`'s) over the fleet, with a client that
/// stops reading, one that vanishes mid-NAR, and builders that cannot be asked. Two real
/// builders; the server runs in-process on one end of a socket pair, the client (nix-bridge's
/// own store client, whose NAR sink can be made to stall) on the other.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class ServeStdioFaultTests {
    let fleet: Fleet
    var work: URL { fleet.work }
    let key1, key2: SigningKey
    /// 32 MiB, on builder 2 only.
    let large: StoreFixture
    /// On builder 2 only.
    let only2: StoreFixture
    /// On builder 1 only.
    let only1: StoreFixture
    let stores: [RemoteStore]

    init() throws {
        fleet = try Fleet(count: 2, label: "nb-serve-faults")
        key1 = try SigningKey.generate(name: "builder1-1", in: fleet.work)
        key2 = try SigningKey.generate(name: "builder2-1", in: fleet.work)
        large = try StoreFixture.large(mebibytes: 32, name: "sf-large", seed: 81)
        only2 = try StoreFixture.make(count: 3, seed: 82, namePrefix: "sf-only2")
        only1 = try StoreFixture.make(count: 1, seed: 83, namePrefix: "sf-only1")
        _ = try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[0].storeRoot), fixture: only1, signWith: key1)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[1].storeRoot),
                                    fixture: StoreFixture.combined([large, only2]), signWith: key2)
        var opener = StoreOpener()
        opener.sshConfig = try SSHConfig.load(path: fleet.sshConfig)
        stores = try fleet.builders.map { try opener.store(try StoreURI(parsing: $0.storeURI)) }
    }

    deinit { fleet.stop() }

    /// A view of both builders, served on a socket pair; the client end's connection.
    func serve(view given: FleetView? = nil, stalledClientTimeout: Duration? = nil,
               log: @escaping @Sendable (String) -> Void = { _ in })
        async throws -> (FleetView, DaemonConnection, Task<StoreServer.Ending, Never>) {
        let keys = try TrustedKeys(parsing: "\(key1.publicKey) \(key2.publicKey)")
        let view = given ?? FleetView(lookup: Lookup(stores: stores, trustedKeys: keys))
        let (serverEnd, clientEnd) = try DescriptorStream.pair(peer: "serve-test")
        let server = Task {
            await StoreServer.serve(serverEnd, backend: FleetStoreBackend(view: view),
                                    info: FleetStoreBackend.handshake(version: "nix-bridge test"),
                                    stalledClientTimeout: stalledClientTimeout, log: log)
        }
        let client = try await DaemonConnection.open(stream: clientEnd, peer: "nix-bridge --stdio")
        return (view, client, server)
    }

    /// What the view pulled from builders, once it stopped growing for half a second.
    func settledPull(_ view: FleetView) async throws -> UInt64 {
        var last = view.narBytesPulled
        for _ in 0..<40 {
            try await Task.sleep(for: .milliseconds(500))
            let now = view.narBytesPulled
            if now == last { return now }
            last = now
        }
        return last
    }

    @Test func aStalledClientCostsAFewMiBAndAVanishedOneEndsTheConnection() async throws {
        let (view, client, server) = try await serve()
        let gate = Gate()
        let received = Atomic<Int>(0)
        let path = try #require(large.paths.first)
        let request = Task {
            try await client.request(.narFromPath(path)) { bytes in
                received.add(bytes.count, ordering: .relaxed)
                try await gate.wait()
            }
        }
        // The client takes one chunk and stops reading.
        while received.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(50)) }
        let stalled = try await settledPull(view)
        #expect(stalled < 16 << 20, "a stalled client made the server pull \(stalled) of \(32 << 20) bytes")
        // The server keeps only the stalled transfer waiting: other queries of the same
        // builder are answered by the same view meanwhile.
        let other = try await view.pathInfos(only2.paths)
        #expect(Set(other.keys) == Set(only2.paths))

        // The client vanishes mid-NAR: the server's connection ends in bounded time.
        await client.close()
        gate.open(throwing: true)
        _ = await request.result
        let clock = ContinuousClock()
        let start = clock.now
        let ending = await server.value
        #expect(clock.now - start < .seconds(10))
        #expect(ending != .clientClosed, "a NAR cut short is an error ending: \(ending)")
        let after = try await settledPull(view)
        #expect(after - stalled < 4 << 20, "after the client left, \(after - stalled) more bytes were pulled")
    }

    @Test func aClientThatStopsReadingIsCutOffAfterTheStallTimeout() async throws {
        let logged = Mutex<[String]>([])
        let (view, client, server) = try await serve(stalledClientTimeout: .seconds(2)) { line in
            logged.withLock { $0.append(line) }
        }
        let (_, other, otherServer) = try await serve(view: view, stalledClientTimeout: .seconds(2))
        let gate = Gate()
        let received = Atomic<Int>(0)
        let path = try #require(large.paths.first)
        let info = try #require(try await view.pathInfo(path))
        // Reads a little, then stops.
        let request = Task {
            try await client.request(.narFromPath(path)) { bytes in
                received.add(bytes.count, ordering: .relaxed)
                try await gate.wait()
            }
        }
        while received.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(50)) }
        let clock = ContinuousClock()
        let stalled = clock.now
        // A client of the same view beside it, reading slowly enough to run past the cut.
        let collected = Mutex<[UInt8]>([])
        let normal = Task {
            try await other.request(.narFromPath(path)) { bytes in
                collected.withLock { $0 += bytes }
                try await Task.sleep(for: .milliseconds(20))
            }
        }

        // The server ends the stalled client's connection within the timeout (plus the
        // check's quarter of it and a loaded machine's slack), naming the path.
        let ending = await server.value
        let after = clock.now - stalled
        #expect(after >= .seconds(2) && after < .seconds(6), "cut after \(after)")
        guard case let .error(why) = ending else { throw SigningFixtures.Failure("ended with \(ending)") }
        #expect(why.contains("read nothing for 2 s"), "\(why)")
        let line = try #require(logged.withLock { $0 }.first { $0.contains("read nothing") }, "\(logged.withLock { $0 })")
        #expect(line.contains(StoreDirectory.default.print(path)), "\(line)")
        gate.open(throwing: false)
        _ = await request.result

        // The other client got the whole NAR: its hash, and Nix restores it.
        _ = try await normal.value
        let nar = collected.withLock { $0 }
        #expect(HashSink.hash(.sha256, nar) == info.narHash)
        let file = work.appendingPathComponent("whole.nar")
        try Data(nar).write(to: file)
        let restored = work.appendingPathComponent("restored").path
        _ = try TestSupport.run(["sh", "-c", "nix-store --restore '\(restored)' < '\(file.path)'"])
        #expect(FileManager.default.fileExists(atPath: restored))
        // Both transfers ended: the builder is no longer pulled for either.
        let settled = try await settledPull(view)
        try await Task.sleep(for: .seconds(1))
        #expect(try await settledPull(view) == settled)
        await other.close()
        _ = await otherServer.value
    }

    @Test func aBuilderThatCannotBeAskedIsAnErrorNotInvalid() async throws {
        let (_, client, server) = try await serve()
        defer { server.cancel() }
        // Builder 1's path is answered; builder 2 is then down and its connection gone.
        guard case .pathInfo(let info?) = try await client.request(.queryPathInfo(only1.paths[0])) else {
            Issue.record("builder 1's path is not served")
            return
        }
        #expect(info.path == only1.paths[0])
        fleet.stop(builder: 2)
        await stores[1].close()

        for request in [WorkerRequest.queryPathInfo(only2.paths[0]), .isValidPath(only2.paths[1]),
                        .queryValidPaths([only2.paths[2], only1.paths[0]], substitute: false)] {
            do {
                let answer = try await client.request(request)
                Issue.record("\(request.op) was answered with \(answer) while builder 2 is down")
            } catch {
                let text = "\(error)"
                #expect(text.contains("ssh-ng://builder2"), "\(text)")
                #expect(!text.contains("is not valid"), "\(text)")
                #expect(await client.isBroken == false, "the server hung up after \(request.op): \(text)")
            }
        }
        // Builder 1's path is still served: the connection goes on after each error.
        guard case .validPaths(let valid) = try await client.request(.queryValidPaths([only1.paths[0]], substitute: false))
        else { throw SigningFixtures.Failure("no reply to QueryValidPaths") }
        #expect(valid == [only1.paths[0]])
        await client.close()
    }
}

/// Where a stalled NAR sink waits until the test lets it go (or makes it fail).
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, fail: Bool, waiters: [CheckedContinuation<Void, any Error>])>((false, false, []))

    struct Closed: Error {}

    func wait() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let now: Bool? = state.withLock { s in
                if s.open { return s.fail }
                s.waiters.append(c)
                return nil
            }
            if let fail = now { if fail { c.resume(throwing: Closed()) } else { c.resume() } }
        }
    }

    func open(throwing: Bool) {
        let waiters = state.withLock { s in
            s.open = true
            s.fail = throwing
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { if throwing { w.resume(throwing: Closed()) } else { w.resume() } }
    }
}
