import NixCore
@testable import NixWire
import Testing

/// Long messages on both roles: a long list is parsed once however it is cut into chunks
/// (the parse work counted is linear in its size, not its square), and a message longer
/// than `maxMessageLength` is refused before it is buffered whole.
struct WireLimitsTests {
    /// `count` distinct store paths.
    static func paths(_ count: Int) -> [StorePath] {
        (0..<count).map { i in
            var digest = [UInt8](repeating: 0, count: 20)
            for k in 0..<8 { digest[k] = UInt8(truncatingIfNeeded: i >> (8 * k)) }
            return try! StorePath(digest: digest, name: "path-\(i)")
        }
    }

    /// Feeds `bytes` to the server in `chunk`-byte pieces; the actions it returned.
    static func feed(_ server: inout WorkerServer, _ bytes: [UInt8], chunk: Int) throws -> [WorkerServer.Action] {
        var actions: [WorkerServer.Action] = []
        var i = 0
        while i < bytes.count {
            actions += try server.receive(bytes[i..<min(i + chunk, bytes.count)])
            i += chunk
        }
        return actions
    }

    @Test(arguments: [27, 38])
    func aLongQueryValidPathsIsParsedOnceOnTheServer(minor: Int) throws {
        var pair = WorkerServerTests.Pair(minor: minor)
        try pair.handshake()
        let paths = Set(Self.paths(20_000))
        let (_, bytes) = try pair.client.send(.queryValidPaths(paths, substitute: true))
        let before = pair.server.bytesParsed
        // In 4 KiB pieces: parsing it again from its start on each would be ~350 times its size.
        let actions = try Self.feed(&pair.server, bytes, chunk: 4096)
        #expect(actions == [.request(.queryValidPaths(paths, substitute: true))])
        let work = pair.server.bytesParsed - before
        #expect(work <= 2 * bytes.count, "parsed \(work) bytes for a request of \(bytes.count)")
    }

    @Test func longBuildPathsAndQueryMissingAreParsedOnce() throws {
        var pair = WorkerServerTests.Pair(minor: 38)
        try pair.handshake()
        let derived = Self.paths(20_000).map(DerivedPath.opaque)
        for request in [WorkerRequest.buildPaths(derived, .normal), .queryMissing(derived),
                        .buildPathsWithResults(derived, .repair), .querySubstitutablePaths(Set(Self.paths(20_000)))] {
            let (_, bytes) = try pair.client.send(request)
            let before = pair.server.bytesParsed
            let actions = try Self.feed(&pair.server, bytes, chunk: 1000)
            #expect(actions == [.request(request)])
            #expect(pair.server.bytesParsed - before <= 2 * bytes.count, "\(request.op)")
        }
    }

    @Test func aLongValidPathsReplyIsParsedOnceOnTheClient() throws {
        var pair = WorkerServerTests.Pair(minor: 38)
        try pair.handshake()
        let paths = Set(Self.paths(20_000))
        let (_, request) = try pair.client.send(.queryValidPaths(paths, substitute: false))
        try pair.pump(request)
        let reply = try pair.server.reply(.validPaths(paths), for: .queryValidPaths)
        let before = pair.client.bytesParsed
        var events: [WorkerConnection.Event] = []
        var i = 0
        while i < reply.count {
            events += try pair.client.receive(reply[i..<min(i + 4096, reply.count)])
            i += 4096
        }
        #expect(events.contains { if case .response(_, .validPaths(paths)) = $0 { true } else { false } })
        #expect(pair.client.bytesParsed - before <= 2 * reply.count)
    }

    @Test func aRequestLongerThanTheCapIsRefusedBeforeItIsWhole() throws {
        var pair = WorkerServerTests.Pair(minor: 38)
        pair.server = WorkerServer(info: ClientHandshakeInfo(daemonNixVersion: "test", remoteTrustsUs: .notTrusted),
                                   limits: WireLimits(maxMessageLength: 64 << 10))
        try pair.handshake()
        // A list read item by item counts every byte; so does a request read whole.
        let (_, list) = try pair.client.send(.queryValidPaths(Set(Self.paths(2_000)), substitute: false))
        let actions = try Self.feed(&pair.server, Array(list.prefix(100 << 10)), chunk: 4096)
        #expect(actions.last == .close)
        guard case let .write(bytes) = actions.first else { throw Failure("no error sent: \(actions)") }
        #expect(String(decoding: bytes, as: UTF8.self).contains("more than 65536 bytes long"))

        var other = WorkerServerTests.Pair(minor: 38)
        other.server = WorkerServer(info: ClientHandshakeInfo(daemonNixVersion: "test", remoteTrustsUs: .notTrusted),
                                    limits: WireLimits(maxMessageLength: 64 << 10))
        try other.handshake()
        let (_, text) = try other.client.send(.addTextToStore(name: "big", text: String(repeating: "x", count: 100 << 10),
                                                               references: []))
        let refused = try Self.feed(&other.server, Array(text.prefix(80 << 10)), chunk: 4096)
        #expect(refused.last == .close)
    }

    @Test func aReplyLongerThanTheCapBreaksTheClientConnection() throws {
        var client = WorkerConnection(limits: WireLimits(maxMessageLength: 64 << 10)) { TestNARDetector() }
        var server = WorkerServer(info: ClientHandshakeInfo(daemonNixVersion: "test", remoteTrustsUs: .notTrusted))
        var toServer = client.start()
        // Handshake, by hand (the pair's client has default limits).
        while !toServer.isEmpty {
            var toClient: [UInt8] = []
            for a in try server.receive(toServer) { if case let .write(b) = a { toClient += b } }
            toServer = []
            for e in try client.receive(toClient) { if case let .write(b) = e { toServer += b } }
        }
        #expect(client.negotiatedVersion != nil)
        _ = try client.send(.queryPathInfo(Self.paths(1)[0]))
        // A log line that never ends within the cap.
        var w = WireWriter()
        w.writeU64(StderrTag.next)
        w.writeU64(1 << 20)
        let head = w.bytes + [UInt8](repeating: 0x61, count: 70 << 10)
        #expect(throws: WireError.self) { _ = try client.receive(head) }
        #expect(client.closedError()?.description.contains("more than 65536 bytes long") == true)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }
}
