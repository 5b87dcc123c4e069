import Foundation
import NixCore
import NixTransport
import NixWire
import Synchronization
import Testing
import TestSupport
@testable import NixStore

/// `StoreServer` over socket pairs, with our own client (`DaemonConnection`, tested against
/// real Nix daemons) on the other end and a small in-memory backend.
struct StoreServerTests {
    static let a = try! StorePath(baseName: "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo")
    static let b = try! StorePath(baseName: "n5wkd9frr45pa74if5gpz9j7mifg27fh-bar")
    static let nar = RawNAR.nar(RawNAR.file(Array(repeating: 7, count: 300_000)))

    struct Refusal: Error, CustomStringConvertible {
        var description: String { "not here" }
    }

    /// Holds path `a` (NAR `nar`); `b` is "broken": its NAR fails after the first chunk.
    struct Backend: StoreServerBackend {
        func isValidPath(_ path: StorePath) async throws -> Bool { path == StoreServerTests.a }

        func queryPathInfo(_ path: StorePath) async throws -> PathInfo? {
            guard path == StoreServerTests.a else { return nil }
            return PathInfo(path: path, narHash: HashSink.hash(.sha256, StoreServerTests.nar),
                            narSize: UInt64(StoreServerTests.nar.count))
        }

        func narFromPath(_ path: StorePath, into send: @escaping @Sendable ([UInt8]) async throws -> Void) async throws {
            switch path {
            case StoreServerTests.a:
                for chunk in StoreServerTests.nar.chunked(64 << 10) { try await send(Array(chunk)) }
            case StoreServerTests.b:
                try await send(Array(StoreServerTests.nar.prefix(1000)))
                throw Refusal()
            default:
                throw Refusal()
            }
        }
    }

    /// A served connection and a client on it.
    static func connect() async throws -> (DaemonConnection, Task<StoreServer.Ending, Never>) {
        let (serverEnd, clientEnd) = try DescriptorStream.pair()
        let serving = Task {
            await StoreServer.serve(serverEnd, backend: Backend(),
                                    info: ClientHandshakeInfo(daemonNixVersion: "test", remoteTrustsUs: .notTrusted))
        }
        let client = try await DaemonConnection.open(stream: clientEnd, peer: "test server")
        return (client, serving)
    }

    @Test func answersAndRefusesAndStreams() async throws {
        let (c, serving) = try await Self.connect()
        #expect(c.handshake.info.remoteTrustsUs == .notTrusted)
        #expect(try await c.request(.isValidPath(Self.a)) == .valid(true))
        #expect(try await c.request(.queryPathInfo(Self.b)) == .pathInfo(nil))
        await #expect(throws: StoreError.self) { try await c.request(.addSignatures(Self.a, ["k:s"])) }
        // The refusal did not break the connection.
        #expect(try await c.request(.isValidPath(Self.b)) == .valid(false))
        let got = Received()
        #expect(try await c.request(.narFromPath(Self.a), narSink: got.sink) == .narEnd)
        #expect(got.all == Self.nar)
        // An error before the first byte is reported; the connection goes on.
        let unknown = try StorePath(baseName: "00000000000000000000000000000000-nowhere")
        do {
            _ = try await c.request(.narFromPath(unknown), narSink: { _ in })
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("not here"), "\(error)")
        }
        #expect(try await c.request(.isValidPath(Self.a)) == .valid(true))
        await c.close()
        #expect(await serving.value == .clientClosed)
    }

    /// What the backend does not implement is refused in Nix's words (the protocol's
    /// defaults), SetOptions is accepted, and the connection goes on; our own client sends
    /// the operations only daemons receive from Nix's clients.
    @Test func unimplementedOperationsAreRefused() async throws {
        let (c, serving) = try await Self.connect()
        #expect(try await c.request(.setOptions(ClientSettings())) == .done)
        let refused: [(WorkerRequest, String)] = [
            (.addTempRoot(Self.a), "you are not privileged to create temporary roots"),
            (.findRoots, "you are not privileged to find roots"),
            (.verifyStore(checkContents: false, repair: true), "you are not privileged to repair paths"),
            (.collectGarbage(action: 0, pathsToDelete: [], ignoreLiveness: false, maxFreed: 0), "you are not privileged to collect garbage"),
        ]
        for (request, message) in refused {
            do {
                _ = try await c.request(request)
                Issue.record("\(request.op) was not refused")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
        #expect(try await c.request(.isValidPath(Self.a)) == .valid(true))
        await c.close()
        #expect(await serving.value == .clientClosed)
    }

    /// A NAR that fails midway cannot be taken back: the server hangs up, the client sees a
    /// cut-short NAR, never a complete one.
    @Test func narFailingMidwayEndsTheConnection() async throws {
        let (c, serving) = try await Self.connect()
        let got = Received()
        await #expect(throws: StoreError.self) {
            _ = try await c.request(.narFromPath(Self.b), narSink: got.sink)
        }
        #expect(got.all.count < Self.nar.count)
        if case .error = await serving.value {} else { Issue.record("the server should have hung up") }
    }

    /// 50 clients at once, pipelining: each gets its own answers.
    @Test func fiftyConnectionsAtOnce() async throws {
        let ok = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<50 {
                group.addTask {
                    let (c, _) = try await Self.connect()
                    defer { Task { await c.close() } }
                    async let v = c.request(.isValidPath(i % 2 == 0 ? Self.a : Self.b))
                    let got = Received()
                    async let n = c.request(.narFromPath(Self.a), narSink: got.sink)
                    let (valid, end) = try await (v, n)
                    return valid == .valid(i % 2 == 0) && end == .narEnd && got.all == Self.nar
                }
            }
            var all: [Bool] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(ok.count == 50)
        #expect(ok.allSatisfy { $0 })
    }
}

/// Collects what a NAR sink receives.
final class Received: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    var all: [UInt8] { bytes.withLock { $0 } }
    var sink: DaemonConnection.NARSink { { b in self.bytes.withLock { $0 += b } } }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
