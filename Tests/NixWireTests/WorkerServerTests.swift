import NixCore
@testable import NixWire
import Testing

/// The daemon-side state machine against the client-side one (`WorkerConnection`, itself
/// tested against real Nix 2.8 daemons), across the versions clients in the wild speak.
struct WorkerServerTests {
    /// A client and a server wired back to back in memory.
    struct Pair {
        var client: WorkerConnection
        var server = WorkerServer(info: ClientHandshakeInfo(daemonNixVersion: "nix-bridge test", remoteTrustsUs: .notTrusted))
        var requests: [WorkerRequest] = []
        var clientEvents: [WorkerConnection.Event] = []
        var closed = false
        /// Streamed requests (`streamedOps`), each with the framed data handed over, and how
        /// many `.dataEnd` came.
        var streamed: [(request: WorkerRequest, data: [UInt8])] = []
        var dataEnds = 0
        /// Bytes the server sent, for byte-level checks.
        var serverBytes: [UInt8] = []

        init(minor: Int) {
            client = WorkerConnection(version: WorkerProtocolVersion(minor: minor)) { TestNARDetector() }
        }

        /// Delivers client bytes to the server and the server's writes back to the client,
        /// until neither has anything more to say.
        mutating func pump(_ bytes: [UInt8]) throws {
            var toServer = bytes
            while !toServer.isEmpty {
                var toClient: [UInt8] = []
                for a in try server.receive(toServer) {
                    switch a {
                    case let .write(b): toClient += b
                    case .handshakeCompleted: break
                    case let .request(r): requests.append(r)
                    case .close: closed = true
                    case let .streamedRequest(r): streamed.append((r, []))
                    case let .data(b): streamed[streamed.count - 1].data += b
                    case .dataEnd: dataEnds += 1
                    }
                }
                toServer = []
                serverBytes += toClient
                guard !toClient.isEmpty else { break }
                for e in try client.receive(toClient) {
                    if case let .write(b) = e { toServer += b } else { clientEvents.append(e) }
                }
            }
        }

        /// Sends server-side answer bytes to the client.
        mutating func answer(_ bytes: [UInt8]) throws {
            serverBytes += bytes
            for e in try client.receive(bytes) {
                if case let .write(b) = e { try pump(b) } else { clientEvents.append(e) }
            }
        }

        mutating func handshake() throws {
            try pump(client.start())
            #expect(clientEvents.contains { if case .handshakeCompleted = $0 { true } else { false } })
            clientEvents = []
        }
    }

    static let versions = [21, 34, 35, 38]

    /// What the server decodes for a request the client sent (data is skipped).
    static func decoded(_ r: WorkerRequest) -> WorkerRequest {
        switch r {
        case let .addToStoreNar(p, repair, dontCheckSigs):
            return .addToStoreNarStreaming(p.info, repair: repair, dontCheckSigs: dontCheckSigs)
        case let .addMultipleToStore(_, repair, dontCheckSigs):
            return .addMultipleToStoreStreaming(repair: repair, dontCheckSigs: dontCheckSigs)
        default:
            return r
        }
    }

    /// The server's answer to a sample exchange, as bytes.
    static func reply(_ request: WorkerRequest, _ response: WorkerResponse, _ server: WorkerServer) throws -> [UInt8] {
        switch response {
        case .narEnd: return server.narHeader() + Samples.nar
        default: return try server.reply(response, for: request.op)
        }
    }

    /// Every operation the client side speaks, pipelined: the server decodes each, and the
    /// client reads each answer back as it was meant.
    @Test(arguments: versions)
    func everyClientOperationRoundTrips(minor: Int) throws {
        var pair = Pair(minor: minor)
        try pair.handshake()
        #expect(pair.server.negotiated?.minor == minor)
        // Below 1.23 AddToStoreNar tunnels its NAR: tested on its own (refusedTunnel).
        let exchanges = Samples.exchanges(WorkerProtocolVersion(minor: minor)).filter {
            if case .addToStoreNar = $0.0 { return minor >= 23 }
            return true
        }
        var out: [UInt8] = []
        var ids: [WorkerConnection.RequestID] = []
        for (request, _) in exchanges {
            let (id, bytes) = try pair.client.send(request)
            ids.append(id)
            out += bytes
        }
        try pair.pump(out)
        #expect(pair.requests == exchanges.map { Self.decoded($0.0) })
        #expect(!pair.closed)
        for (request, response) in exchanges { try pair.answer(try Self.reply(request, response, pair.server)) }
        let responses = pair.clientEvents.compactMap { e -> WorkerResponse? in
            if case let .response(_, r) = e { return r } else { return nil }
        }
        #expect(responses == exchanges.map(\.1))
        let nar = pair.clientEvents.flatMap { e -> [UInt8] in if case let .narData(_, b) = e { return b } else { return [] } }
        #expect(nar == Samples.nar)
    }

    /// The handshake's end as upstream's daemon sends it: the Nix version from 1.33, the
    /// trusted flag from 1.35 (2: not trusted), then STDERR_LAST; features at 1.38.
    @Test(arguments: versions)
    func handshakeBytes(minor: Int) throws {
        var pair = Pair(minor: minor)
        try pair.handshake()
        var w = WireWriter()
        w.writeU64(WorkerMagic.server)
        w.writeU64(WorkerProtocolVersion.latest.wire)
        if minor >= 38 { w.writeStrings([]) }
        if minor >= 33 { w.writeString("nix-bridge test") }
        if minor >= 35 { w.writeU64(2) }
        w.writeU64(StderrTag.last)
        #expect(pair.serverBytes == w.bytes)
    }

    /// MAGIC_1 alone is answered at once (Nix 2.8 and Lix wait for it).
    @Test func answersMagicAlone() throws {
        var server = WorkerServer(info: ClientHandshakeInfo())
        var w = WireWriter()
        w.writeU64(WorkerMagic.client)
        let actions = try server.receive(w.bytes)
        var expected = WireWriter()
        expected.writeU64(WorkerMagic.server)
        expected.writeU64(WorkerProtocolVersion.latest.wire)
        #expect(actions == [.write(expected.bytes)])
    }

    /// As upstream: "invalid operation N", then the daemon hangs up.
    @Test(arguments: versions)
    func unknownOperationEndsTheConnection(minor: Int) throws {
        var pair = Pair(minor: minor)
        try pair.handshake()
        var w = WireWriter()
        w.writeU64(99)
        pair.serverBytes = []
        let actions = try pair.server.receive(w.bytes)
        #expect(actions.last == .close)
        guard case let .write(bytes) = actions.first else { Issue.record("no error written"); return }
        var r = WireReader(bytes)
        let message = try StderrMessage.read(from: &r, WireContext(version: WorkerProtocolVersion(minor: minor)))
        #expect(message == .error(DaemonError(message: "invalid operation 99", status: minor >= 26 ? nil : 1)))
        #expect(try pair.server.receive(w.bytes).isEmpty)
    }

    /// The operations only a daemon receives, encoded as upstream's clients encode them;
    /// framed data is skipped, so the next request is read in step.
    @Test(arguments: versions)
    func serverOnlyOperations(minor: Int) throws {
        var pair = Pair(minor: minor)
        try pair.handshake()
        let ctx = WireContext(version: WorkerProtocolVersion(minor: minor))
        var w = WireWriter()
        w.writeU64(WorkerOp.addTempRoot.rawValue)
        w.writeStorePath(Samples.a, ctx)
        w.writeU64(WorkerOp.querySubstitutablePaths.rawValue)
        w.writeStorePathSet([Samples.a, Samples.b], ctx)
        w.writeU64(WorkerOp.querySubstitutablePathInfos.rawValue)
        if minor >= 22 {
            w.writeU64(1)
            w.writeStorePath(Samples.b, ctx)
            w.writeString("")
        } else {
            w.writeStorePathSet([Samples.b], ctx)
        }
        w.writeU64(WorkerOp.addBuildLog.rawValue)
        w.writeString(Samples.drv.baseName)
        FramedStream.encode(Array("a log\n".utf8), into: &w)
        w.writeU64(WorkerOp.buildPaths.rawValue)
        w.writeU64(1)
        try DerivedPath.opaque(Samples.a).write(to: &w, ctx)
        BuildMode.normal.write(to: &w)
        w.writeU64(WorkerOp.isValidPath.rawValue)
        w.writeStorePath(Samples.b, ctx)
        // Fed one byte at a time: every partial request must wait, not fail.
        for byte in w.bytes { try pair.pump([byte]) }
        #expect(pair.requests == [
            .addTempRoot(Samples.a),
            .querySubstitutablePaths([Samples.a, Samples.b]),
            .querySubstitutablePathInfos([Samples.b]),
            .addBuildLog(Samples.drv.baseName),
            .buildPaths([.opaque(Samples.a)], .normal),
            .isValidPath(Samples.b),
        ])
        #expect(!pair.closed)
    }

    /// AddToStore's dump is framed from 1.25 (skipped); before, it cannot be skipped, so the
    /// server reports it and hangs up.
    @Test(arguments: versions)
    func addToStore(minor: Int) throws {
        var pair = Pair(minor: minor)
        try pair.handshake()
        let ctx = WireContext(version: WorkerProtocolVersion(minor: minor))
        var w = WireWriter()
        w.writeU64(WorkerOp.addToStore.rawValue)
        if minor >= 25 {
            w.writeString("foo")
            w.writeString("fixed:r:sha256")
            w.writeStorePathSet([Samples.b], ctx)
            w.writeBool(false)
            FramedStream.encode(Samples.nar, into: &w)
        } else {
            w.writeString("foo")
        }
        try pair.pump(w.bytes)
        if minor >= 25 {
            #expect(pair.requests == [.addToStore(name: "foo", method: "fixed:r:sha256", references: [Samples.b], repair: false)])
            #expect(!pair.closed)
        } else {
            #expect(pair.requests.isEmpty)
            #expect(pair.closed)
        }
    }

    /// Below 1.23 AddToStoreNar's NAR would be pulled with STDERR_READ: refusing it at once
    /// keeps the conversation in step.
    @Test func refusedTunnel() throws {
        var pair = Pair(minor: 21)
        try pair.handshake()
        let info = Samples.info(WorkerProtocolVersion(minor: 16))
        let (_, add) = try pair.client.send(.addToStoreNar(PathWithNAR(info: info, nar: Samples.nar), repair: false, dontCheckSigs: false))
        let (_, valid) = try pair.client.send(.isValidPath(Samples.b))
        try pair.pump(add + valid)
        #expect(pair.requests == [.addToStoreNarStreaming(info, repair: false, dontCheckSigs: false)])
        try pair.answer(pair.server.failure(DaemonError(message: "you are not privileged to add paths")))
        try pair.pump([])
        #expect(pair.requests.last == .isValidPath(Samples.b))
        try pair.answer(try pair.server.reply(.valid(false), for: .isValidPath))
        #expect(pair.clientEvents.count == 2)
        if case let .failure(_, e) = pair.clientEvents.first {
            #expect(e.message == "you are not privileged to add paths")
        } else {
            Issue.record("expected a failure, got \(pair.clientEvents)")
        }
        if case let .response(_, r) = pair.clientEvents.last { #expect(r == .valid(false)) } else { Issue.record("no reply") }
    }

    /// With `streamedOps`, AddToStoreNar's and AddMultipleToStore's framed data is handed over
    /// as it arrives (here one byte at a time), and the requests after them still decode.
    @Test(arguments: [32, 34, 38]) func streamedOpsHandOverTheirData(minor: Int) throws {
        var pair = Pair(minor: minor)
        pair.server = WorkerServer(info: ClientHandshakeInfo(daemonNixVersion: "nix-bridge test", remoteTrustsUs: .notTrusted),
                                   streamedOps: [.addToStoreNar, .addMultipleToStore])
        try pair.handshake()
        let v = WorkerProtocolVersion(minor: minor)
        let path = PathWithNAR(info: Samples.info(WorkerProtocolVersion(minor: 16)),
                               nar: Samples.nar)
        let (_, add) = try pair.client.send(.addToStoreNar(path, repair: false, dontCheckSigs: true))
        let (_, multi) = try pair.client.send(.addMultipleToStore([path], repair: true, dontCheckSigs: false))
        let (_, valid) = try pair.client.send(.isValidPath(Samples.b))
        for byte in add + multi + valid { try pair.pump([byte]) }
        #expect(pair.streamed.map(\.request) == [
            .addToStoreNarStreaming(path.info, repair: false, dontCheckSigs: true),
            .addMultipleToStoreStreaming(repair: true, dontCheckSigs: false),
        ])
        #expect(pair.streamed.first?.data == Samples.nar)
        #expect(pair.streamed.last?.data == WorkerRequest.multiplePayload([path], WireContext(version: v, storeDir: .default)))
        #expect(pair.dataEnds == 2)
        #expect(pair.requests == [.isValidPath(Samples.b)])
        #expect(!pair.closed)
    }
}
