import NixCore
@testable import NixWire
import Testing

/// QueryAllValidPaths (op 23): no arguments, a set of paths back, read as it streams in.
struct AllValidPathsWireTests {
    @Test func requestIsTheOpCodeAlone() throws {
        let ctx = WireContext(version: .nix28)
        #expect(try WorkerRequest.queryAllValidPaths.encoded(ctx) == [23, 0, 0, 0, 0, 0, 0, 0])
        var r = WireReader([23, 0, 0, 0, 0, 0, 0, 0])
        #expect(try WorkerRequest.read(from: &r, ctx) == .queryAllValidPaths)
        #expect(r.isAtEnd)
        // Any other reply does not answer it.
        var w = WireWriter()
        #expect(throws: WireError.self) { try WorkerResponse.valid(true).write(to: &w, for: .queryAllValidPaths, ctx) }
    }

    /// A 5,000-path reply fed in 7-byte chunks, pipelined between two other requests.
    @Test func streamedReplyBetweenOtherRequests() throws {
        let v = WorkerProtocolVersion.nix28
        let ctx = WireContext(version: v)
        var client = WorkerConnection(version: v, narDetector: { TestNARDetector() })
        var server = FakeDaemon(version: v, script: [])
        var back: [UInt8] = []
        for e in try client.receive(try server.receive(client.start())) { if case let .write(b) = e { back += b } }
        _ = try client.receive(try server.receive(back))
        let paths = Set((0..<5_000).map { i in
            try! StorePath(digest: HashSink.hash(.sha256, Array("all-\(i)".utf8)).compressed(to: 20), name: "a\(i)")
        })
        let (first, _) = try client.send(.isValidPath(try #require(paths.first)))
        let (all, _) = try client.send(.queryAllValidPaths)
        let (last, _) = try client.send(.queryValidPaths([], substitute: false))
        let reply = try WorkerResponse.valid(true).encodedReply(for: .isValidPath, ctx)
            + WorkerResponse.validPaths(paths).encodedReply(for: .queryAllValidPaths, ctx)
            + WorkerResponse.validPaths([]).encodedReply(for: .queryValidPaths, ctx)
        var events: [WorkerConnection.Event] = []
        var i = 0
        while i < reply.count {
            events += try client.receive(reply[i..<min(reply.count, i + 7)])
            i += 7
        }
        #expect(events == [.response(first, .valid(true)), .response(all, .validPaths(paths)), .response(last, .validPaths([]))])
    }
}
