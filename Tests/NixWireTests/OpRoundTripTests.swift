import NixCore
@testable import NixWire
import Testing

/// Every operation's request and reply through the encoders and decoders of both sides, at
/// each version that matters, and whole pipelined conversations fed in chunks of any size.
struct OpRoundTripTests {
    static let versions: [WorkerProtocolVersion] = [21, 23, 27, 30, 34, 35, 37, 38].map { WorkerProtocolVersion(minor: $0) }
        + [WorkerProtocolVersion(minor: 38, features: [WorkerProtocolVersion.featureRealisationWithPath])]

    @Test(arguments: versions)
    func requestsAndRepliesRoundTrip(version: WorkerProtocolVersion) throws {
        let ctx = WireContext(version: version)
        for (req, resp) in Samples.exchanges(version) {
            if case .addToStoreNar = req, !version.atLeast(23) {
                // Below 1.23 the NAR is tunnelled; only the header is in the request.
                var r = WireReader(try req.encoded(ctx))
                #expect(throws: WireError.self) { _ = try WorkerRequest.read(from: &r, ctx) }
                continue
            }
            var r = WireReader(try req.encoded(ctx))
            #expect(try WorkerRequest.read(from: &r, ctx) == req, "\(req.op) at \(version)")
            #expect(r.isAtEnd)
            guard resp != .narEnd else { continue }
            var rr = WireReader(try resp.encodedReply(for: req.op, ctx))
            #expect(try StderrMessage.read(from: &rr, ctx) == .last)
            #expect(try WorkerResponse.read(for: req, from: &rr, ctx) == resp, "\(req.op) reply at \(version)")
            #expect(rr.isAtEnd)
        }
    }

    /// The operations only daemons receive from Nix's clients, and their replies: one type
    /// writes and reads each, at every version.
    @Test(arguments: [21, 25, 31, 38])
    func daemonOperationsRoundTrip(minor: Int) throws {
        let v = WorkerProtocolVersion(minor: minor)
        let ctx = WireContext(version: v)
        let a = Samples.a, b = Samples.b, drv = Samples.drv
        let id = "sha256:" + Base16.encode(Samples.hash.bytes) + "!out"
        let real = Realisation(id: try DrvOutput(parsing: id), outPath: a, signatures: nil, dependentRealisations: nil)
        var exchanges: [(WorkerRequest, WorkerResponse)] = [
            (.hasSubstitutes(a), .valid(false)),
            (.queryReferrers(a), .validPaths([b])),
            (.ensurePath(a), .done),
            (.addTempRoot(a), .done),
            (.queryDeriver(a), .storePath(drv)),
            (.querySubstitutablePathInfo(a), .substitutablePathInfos([a: SubstitutablePathInfo(deriver: drv, references: [b], downloadSize: 10, narSize: 20)])),
            (.querySubstitutablePathInfo(b), .substitutablePathInfos([:])),
            (.queryDerivationOutputs(drv), .validPaths([a])),
            (.queryDerivationOutputNames(drv), .outputNames(["out", "dev"])),
            (.queryValidDerivers(a), .validPaths([drv])),
            (.queryDerivationOutputMap(drv), .outputMap(["out": a, "dev": nil])),
            (.querySubstitutablePaths([a, b]), .validPaths([])),
            (.querySubstitutablePathInfos([a]), .substitutablePathInfos([a: SubstitutablePathInfo(narSize: 5)])),
            (.addTextToStore(name: "foo", text: "hello", references: [b]), .storePath(a)),
            (.importPaths, .validPaths([a])),
            (.addIndirectRoot("/home/u/result"), .done),
            (.addPermRoot(a, "/home/u/result"), .rootLink("/home/u/result")),
            (.syncWithGC, .done),
            (.findRoots, .roots(["/nix/var/nix/gcroots/auto/x": a])),
            (.collectGarbage(action: 2, pathsToDelete: [a], ignoreLiveness: false, maxFreed: 100),
             .collected(deleted: [StoreDirectory.default.print(a)], bytesFreed: 4096)),
            (.optimiseStore, .done),
            (.verifyStore(checkContents: true, repair: false), .valid(true)),
            (.registerDrvOutput(real), .done),
            (.queryRealisation(id), .realisations([real])),
            (.addBuildLog(drv.baseName), .done),
            (.buildPaths([.opaque(a)], .repair), .done),
        ]
        if v.atLeast(25) {
            exchanges.append((.addToStore(name: "foo", method: "fixed:r:sha256", references: [b], repair: false), .addedPath(Samples.info(v))))
        }
        for (req, resp) in exchanges {
            var r = WireReader(try req.encoded(ctx))
            #expect(try WorkerRequest.read(from: &r, ctx, includeData: false) == req, "\(req.op) at \(v)")
            #expect(r.isAtEnd, "\(req.op) at \(v)")
            var rr = WireReader(try resp.encodedReply(for: req.op, ctx))
            #expect(try StderrMessage.read(from: &rr, ctx) == .last)
            #expect(try WorkerResponse.read(for: req, from: &rr, ctx) == resp, "\(req.op) reply at \(v)")
            #expect(rr.isAtEnd)
        }
    }

    /// A server can take AddToStoreNar's header first and stream the NAR frames itself.
    @Test func streamingAddToStoreNar() throws {
        let ctx = WireContext(version: .nix28)
        let info = Samples.info(WorkerProtocolVersion(minor: 16))
        let req = WorkerRequest.addToStoreNar(PathWithNAR(info: info, nar: Samples.nar), repair: true, dontCheckSigs: false)
        var r = WireReader(try req.encoded(ctx))
        let header = try #require(try WorkerRequest.read(from: &r, ctx, includeData: false))
        #expect(header == .addToStoreNarStreaming(info, repair: true, dontCheckSigs: false))
        var dec = FramedStreamDecoder()
        var nar: [UInt8] = []
        while let e = try dec.next(from: &r) {
            if case let .data(d) = e { nar += d } else { break }
        }
        #expect(nar == Samples.nar)
        #expect(r.isAtEnd)

        let multi = WorkerRequest.addMultipleToStore([PathWithNAR(info: info, nar: Samples.nar)], repair: false, dontCheckSigs: true)
        var m = WireReader(try multi.encoded(ctx))
        #expect(try WorkerRequest.read(from: &m, ctx, includeData: false) == .addMultipleToStoreStreaming(repair: false, dontCheckSigs: true))
        let payload = try #require(try FramedStreamDecoder.decodeAll(from: &m))
        #expect(try WorkerRequest.decodeMultiplePayload(payload, ctx) == [PathWithNAR(info: info, nar: Samples.nar)])
    }

    /// Nix 2.8 begins a NAR for a path it cannot read, then sends STDERR_ERROR inside it.
    @Test(arguments: [Int.max, 1, 5])
    func errorInsideNAR(chunk: Int) throws {
        let v = WorkerProtocolVersion.nix28
        let ctx = WireContext(version: v)
        var client = WorkerConnection(version: v, narDetector: { TestNARDetector() })
        var server = FakeDaemon(version: v, script: [])
        var back: [UInt8] = []
        for e in try client.receive(try server.receive(client.start())) { if case let .write(b) = e { back += b } }
        _ = try client.receive(try server.receive(back))
        let (id, _) = try client.send(.narFromPath(Samples.a))
        let err = DaemonError(message: "getting status of '/nix/store/x': No such file or directory")
        var w = WireWriter()
        StderrMessage.last.write(to: &w, ctx)
        w.writeString("nix-archive-1")
        StderrMessage.error(err).write(to: &w, ctx)
        var events: [WorkerConnection.Event] = []
        var i = 0
        while i < w.bytes.count && client.inFlight > 0 {
            let end = w.bytes.count - i <= chunk ? w.bytes.count : i + chunk
            events += try client.receive(w.bytes[i..<end])
            i = end
        }
        #expect(events.last == .failure(id, err))
        #expect(client.closedError() == .daemon(err))
        #expect(throws: WireError.daemon(err)) { try client.receive([0]) }
    }

    @Test func operationsNeedTheirVersion() throws {
        let ctx = WireContext(version: WorkerProtocolVersion(minor: 31))
        #expect(throws: WireError.self) { try WorkerRequest.addMultipleToStore([], repair: false, dontCheckSigs: false).encoded(ctx) }
        #expect(throws: WireError.self) { try WorkerRequest.buildPathsWithResults([], .normal).encoded(ctx) }
        // An opaque .drv cannot be named before 1.30.
        #expect(throws: WireError.self) { try WorkerRequest.queryMissing([.opaque(Samples.drv)]).encoded(WireContext(version: .init(minor: 29))) }
        #expect(try WorkerRequest.queryMissing([.opaque(Samples.drv)]).encoded(WireContext(version: .init(minor: 30))).count > 0)
    }

    /// Runs a whole conversation in memory: all requests written before any reply is read.
    static func converse(_ version: WorkerProtocolVersion, chunk: Int) throws
        -> (events: [WorkerConnection.Event], ids: [WorkerConnection.RequestID], sent: [WorkerRequest], daemon: FakeDaemon)
    {
        var exchanges = Samples.exchanges(version).filter { req, _ in
            if case .addToStoreNar = req { return version.atLeast(23) }
            return true
        }
        let boom = DaemonError(message: "path '\u{1b}[35;1m/nix/store/x\u{1b}[0m' is not valid", traces: ["while doing it"])
        exchanges.insert((.isValidPath(Samples.b), .done), at: 3)
        var script: [FakeDaemon.Answer] = exchanges.map { .reply($0.1) }
        script[3] = .error(boom)

        var client = WorkerConnection(version: version, narDetector: { TestNARDetector() })
        var daemon = FakeDaemon(version: version, script: script)
        var events: [WorkerConnection.Event] = []
        var toDaemon = client.start()
        var ids: [WorkerConnection.RequestID] = []
        var sentAll = false
        for _ in 0..<1000 {
            let toClient = try daemon.receive(toDaemon)
            toDaemon = []
            var i = 0
            while i < toClient.count {
                let end = min(toClient.count, i + chunk)
                for e in try client.receive(toClient[i..<end]) {
                    if case let .write(b) = e { toDaemon += b } else { events.append(e) }
                }
                i = end
            }
            if client.negotiatedVersion != nil && !sentAll {
                for (req, _) in exchanges {
                    let (id, bytes) = try client.send(req)
                    ids.append(id)
                    toDaemon += bytes
                }
                sentAll = true
            }
            if sentAll && client.inFlight == 0 { break }
        }
        #expect(client.inFlight == 0)
        #expect(client.bufferedByteCount == 0)
        return (events, ids, exchanges.map(\.0), daemon)
    }

    @Test(arguments: versions, [Int.max, 1, 13])
    func pipelinedConversation(version: WorkerProtocolVersion, chunk: Int) throws {
        let (events, ids, sent, daemon) = try Self.converse(version, chunk: chunk)
        #expect(daemon.received == sent)
        // One terminal event per request, in request order.
        let terminal: [WorkerConnection.RequestID] = events.compactMap {
            switch $0 {
            case let .response(id, _), let .failure(id, _): return id
            default: return nil
            }
        }
        #expect(terminal == ids)
        guard case let .handshakeCompleted(h) = events.first else {
            Issue.record("no handshake")
            return
        }
        #expect(h.version == version)
        #expect(h.info.daemonNixVersion == (version.atLeast(33) ? "2.99-fake" : nil))
        #expect(h.info.remoteTrustsUs == (version.atLeast(35) ? .trusted : nil))
        let exchanges = Samples.exchanges(version).filter { req, _ in
            if case .addToStoreNar = req { return version.atLeast(23) }
            return true
        }
        var expected = exchanges.map(\.1)
        expected.insert(.done, at: 3)
        for (n, id) in ids.enumerated() {
            let mine = events.filter {
                switch $0 {
                case let .log(i, _): return i == id
                case let .narData(i, _), let .response(i, _), let .failure(i, _): return i == id
                default: return false
                }
            }
            let logs = mine.compactMap { if case let .log(_, l) = $0 { return l } else { return nil } }
            #expect(logs == FakeDaemon.logs(for: sent[n].op))
            if n == 3 {
                guard case let .failure(_, e)? = mine.last else {
                    Issue.record("request 3 should fail")
                    continue
                }
                #expect(e.traces == (version.atLeast(26) ? ["while doing it"] : []))
                #expect(e.displayMessage == "path '/nix/store/x' is not valid")
                continue
            }
            #expect(mine.last == WorkerConnection.Event.response(id, expected[n]), "\(sent[n].op)")
            if expected[n] == .narEnd {
                let nar = mine.flatMap { if case let .narData(_, b) = $0 { return b } else { return [] } }
                #expect(nar == Samples.nar)
            }
        }
    }

    /// Before 1.23 the daemon pulls AddToStoreNar's NAR with STDERR_READ; the connection
    /// answers from the request's NAR.
    @Test func tunnelledAddToStoreNar() throws {
        let v = WorkerProtocolVersion(minor: 22)
        let ctx = WireContext(version: v)
        var client = WorkerConnection(version: v, narDetector: { TestNARDetector() })
        var server = FakeDaemon(version: v, script: [])
        var toClient = try server.receive(client.start())
        var back: [UInt8] = []
        for e in try client.receive(toClient) { if case let .write(b) = e { back += b } }
        _ = try client.receive(try server.receive(back))
        #expect(client.negotiatedVersion == v)
        let info = Samples.info(WorkerProtocolVersion(minor: 16))
        let (id, bytes) = try client.send(.addToStoreNar(PathWithNAR(info: info, nar: Samples.nar), repair: false, dontCheckSigs: false))
        #expect(!bytes.isEmpty)
        // A later request waits: our STDERR_READ answers must follow the AddToStoreNar directly.
        let (nextID, held) = try client.send(.isValidPath(Samples.a))
        #expect(held.isEmpty)
        var w = WireWriter()
        StderrMessage.read(10).write(to: &w, ctx)
        StderrMessage.read(1000).write(to: &w, ctx)
        toClient = w.bytes
        var writes: [[UInt8]] = []
        for e in try client.receive(toClient) { if case let .write(b) = e { writes.append(b) } }
        var r = WireReader(writes.flatMap { $0 })
        #expect(try r.readBytes("chunk") == Array(Samples.nar.prefix(10)))
        #expect(try r.readBytes("chunk") == Array(Samples.nar.dropFirst(10)))
        var last = WireWriter()
        StderrMessage.last.write(to: &last, ctx)
        let released = try WorkerRequest.isValidPath(Samples.a).encoded(ctx)
        #expect(try client.receive(last.bytes) == [.write(released), .response(id, .done)])
        #expect(try client.receive(try WorkerResponse.valid(true).encodedReply(for: .isValidPath, ctx)) == [.response(nextID, .valid(true))])
    }

    /// A 50,000-path QueryValidPaths reply fed in 4 KiB chunks is read once, not re-parsed
    /// from its start on every chunk.
    @Test func largeReplyInSmallChunks() throws {
        let v = WorkerProtocolVersion.nix28
        let ctx = WireContext(version: v)
        var client = WorkerConnection(version: v, narDetector: { TestNARDetector() })
        var server = FakeDaemon(version: v, script: [])
        var back: [UInt8] = []
        for e in try client.receive(try server.receive(client.start())) { if case let .write(b) = e { back += b } }
        _ = try client.receive(try server.receive(back))
        let paths = Set((0..<50_000).map { i in
            try! StorePath(digest: HashSink.hash(.sha256, Array("\(i)".utf8)).compressed(to: 20), name: "p\(i)")
        })
        let (id, _) = try client.send(.queryValidPaths(paths, substitute: false))
        let reply = try WorkerResponse.validPaths(paths).encodedReply(for: .queryValidPaths, ctx)
        let clock = ContinuousClock()
        var events: [WorkerConnection.Event] = []
        let t = try clock.measure {
            var i = 0
            while i < reply.count {
                events += try client.receive(reply[i..<min(reply.count, i + 4096)])
                i += 4096
            }
        }
        #expect(events == [.response(id, .validPaths(paths))])
        #expect(t < .seconds(20), "\(t) for \(reply.count) bytes")
        print("NixWire QueryValidPaths reply of 50,000 paths (\(reply.count) bytes) in 4 KiB chunks: \(t)")
    }
}
