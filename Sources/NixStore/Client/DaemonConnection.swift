import Foundation
import Glibc
import NixCore
import NixTransport
import NixWire
import Synchronization

/// One worker-protocol connection to a Nix daemon over a byte stream. Requests are
/// pipelined: many may be in flight, the daemon answers them in order, and each caller
/// gets its own reply. A single reader task feeds the protocol state machine; a single
/// writer task sends requests in the order they were queued.
public actor DaemonConnection {
    /// Who we talk to, for errors ("ssh-ng://builder1").
    public nonisolated let peer: String
    /// What the handshake agreed (protocol version, Nix version, trusted flag).
    public nonisolated let handshake: HandshakeResult

    private let stream: any ByteStream
    private var wire: WorkerConnection
    private var waiters: [WorkerConnection.RequestID: CheckedContinuation<WorkerResponse, any Error>] = [:]
    private var narSinks: [WorkerConnection.RequestID: NARSink] = [:]
    private var failure: StoreError?
    /// Bytes queued for the daemon, sent by the writer task. Small pieces are joined, so a
    /// burst of pipelined requests leaves as a few large writes; large ones (NAR frames) stay
    /// separate chunks, so they are never copied into one growing buffer.
    private var outChunks: [[UInt8]] = []
    /// Bytes queued or being written: what a streamed request waits on (bounds memory).
    private var unwritten = 0
    private let doorbell: AsyncStream<Void>.Continuation
    private var logHandler: (@Sendable (LogEvent) -> Void)?
    /// Replies that arrived before their caller started waiting (a streamed request can be
    /// refused while its data is still being sent).
    private var early: [WorkerConnection.RequestID: Result<WorkerResponse, StoreError>] = [:]
    /// True while a request streams its data: nothing else may be sent in between.
    private var streaming = false
    /// Streamers waiting for the writer to catch up (bounds what is buffered).
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []
    static let maxBuffered = 4 << 20
    /// The most bytes ever queued or being written at once: what bounds a streamed NAR's
    /// memory (for tests).
    private(set) var peakQueued = 0

    /// Receives the bytes of a NAR as they arrive, in order. The connection reads nothing
    /// more from the daemon until the sink returns, so a slow sink holds the sender back
    /// (bounded memory when the bytes are forwarded elsewhere).
    public typealias NARSink = @Sendable ([UInt8]) async throws -> Void

    /// How long the connection waits on the daemon.
    public struct Timeouts: Sendable {
        /// The whole worker handshake (nil: no limit).
        public var handshake: Duration?
        /// A request waiting for its reply, or data being sent, with no byte moving either
        /// way for this long fails the connection (nil: no limit). Builds are exempt: a
        /// daemon is silent while it builds (a dead link is found by SSH keepalives).
        public var stalled: Duration?

        public init(handshake: Duration? = nil, stalled: Duration? = nil) {
            self.handshake = handshake
            self.stalled = stalled
        }
    }

    private var timeouts = Timeouts()
    /// When a byte last moved either way.
    private var lastActivity = ContinuousClock.now
    /// The op of each request still waiting for its reply (for stall checks and messages).
    private var pendingOps: [WorkerConnection.RequestID: WorkerOp] = [:]

    private init(peer: String, stream: any ByteStream, wire: WorkerConnection, handshake: HandshakeResult,
                 doorbell: AsyncStream<Void>.Continuation) {
        self.peer = peer
        self.stream = stream
        self.wire = wire
        self.handshake = handshake
        self.doorbell = doorbell
    }

    /// Performs the handshake on `stream` and starts the connection's reader and writer.
    public static func open(stream: any ByteStream, peer: String,
                            version: WorkerProtocolVersion = .latest,
                            storeDir: StoreDirectory = .default,
                            timeouts: Timeouts = Timeouts(),
                            logs: (@Sendable (LogEvent) -> Void)? = nil) async throws(StoreError) -> DaemonConnection {
        var wire = WorkerConnection(version: version, storeDir: storeDir) { NARReaderBoundary() }
        var result: HandshakeResult?
        // A daemon that never answers: the stream is closed under the handshake, which then
        // fails, and the failure is reported as the timeout it is.
        let expired = ExpiryFlag()
        let watchdog = timeouts.handshake.map { limit in
            Task { [stream] in
                try await Task.sleep(for: limit)
                expired.set()
                await stream.close()
            }
        }
        defer { watchdog?.cancel() }
        func timedOut() -> StoreError? {
            guard let limit = timeouts.handshake, expired.isSet else { return nil }
            return .timedOut(peer: peer, seconds: limit.seconds, phase: "worker handshake")
        }
        do {
            // Cancelled (an interrupted command): the stream closed, the handshake ends.
            try await withTaskCancellationHandler {
                try await stream.write(wire.start())
                while result == nil {
                    let chunk = try await stream.read(maxLength: 64 << 10)
                    if chunk.isEmpty {
                        if let e = timedOut() { throw e }
                        throw StoreError.closedDuringHandshake(peer: peer, stderr: await remoteStderr(stream))
                    }
                    for event in try wire.receive(chunk) {
                        switch event {
                        case let .write(bytes): try await stream.write(bytes)
                        case let .handshakeCompleted(r): result = r
                        case let .log(_, e): logs?(e)
                        default: break
                        }
                    }
                }
            } onCancel: {
                Task { [stream] in await stream.close() }
            }
        } catch let e as StoreError {
            await stream.close()
            throw timedOut() ?? e
        } catch {
            await stream.close()
            throw timedOut() ?? StoreError.wrap(error, peer: peer)
        }
        watchdog?.cancel()
        if let e = timedOut() {
            await stream.close()
            throw e
        }
        let (bell, ring) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let conn = DaemonConnection(peer: peer, stream: stream, wire: wire, handshake: result!, doorbell: ring)
        await conn.setup(logs: logs, timeouts: timeouts)
        conn.startTasks(doorbell: bell)
        if let limit = timeouts.stalled { conn.startStallWatch(limit) }
        return conn
    }

    /// What the remote command printed on stderr, once it exited (bounded wait).
    static func remoteStderr(_ stream: any ByteStream) async -> String {
        if let ssh = stream as? SSHChannelStream {
            _ = await ssh.waitForExit()
            return ssh.stderrText
        }
        if let process = stream as? ProcessStream {
            _ = await process.waitForExit()
            return process.stderrText
        }
        return ""
    }

    private func setup(logs: (@Sendable (LogEvent) -> Void)?, timeouts: Timeouts) {
        logHandler = logs
        self.timeouts = timeouts
        lastActivity = .now
    }

    /// Ops a daemon may rightly be silent for as long as they take.
    static func mayBeSilent(_ op: WorkerOp) -> Bool {
        [.buildPaths, .buildDerivation, .buildPathsWithResults, .ensurePath, .collectGarbage,
         .verifyStore, .optimiseStore, .addPermRoot, .syncWithGC].contains(op)
    }

    /// Checks, a few times per `limit`, that a waiting request or unsent data moved within
    /// `limit`; fails the connection otherwise.
    private nonisolated func startStallWatch(_ limit: Duration) {
        let tick = max(min(limit / 4, .seconds(1)), .milliseconds(10))
        Task { [weak self] in
            while true {
                try? await Task.sleep(for: tick)
                guard let self, await self.checkStall(limit) else { return }
            }
        }
    }

    /// False once the connection is broken (the watch ends).
    private func checkStall(_ limit: Duration) -> Bool {
        guard failure == nil else { return false }
        let waitingOn = pendingOps.sorted { $0.key.value < $1.key.value }.map(\.value).first { !Self.mayBeSilent($0) }
        let sending = unwritten > 0 || streaming
        guard waitingOn != nil || sending else {
            lastActivity = .now
            return true
        }
        guard ContinuousClock.now - lastActivity > limit else { return true }
        let phase = waitingOn.map(Self.opName) ?? "sending data"
        fail(.timedOut(peer: peer, seconds: limit.seconds, phase: phase + " (no data moved)"))
        return false
    }

    /// Nix's name of an op ("QueryPathInfo").
    static func opName(_ op: WorkerOp) -> String {
        let s = "\(op)"
        return s.prefix(1).uppercased() + s.dropFirst()
    }

    private func takeOutgoing() -> [[UInt8]] {
        defer { outChunks = [] }
        return outChunks
    }

    private func wrote(_ count: Int) {
        lastActivity = .now
        unwritten -= count
        guard unwritten < Self.maxBuffered else { return }
        let waiting = drainWaiters
        drainWaiters = []
        for w in waiting { w.resume() }
    }

    /// Waits until the writer has sent most of what is queued.
    private func drain() async {
        guard unwritten >= Self.maxBuffered, failure == nil else { return }
        await withCheckedContinuation { drainWaiters.append($0) }
    }

    private static let joinLimit = 64 << 10

    private func enqueue(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if bytes.count < Self.joinLimit, let last = outChunks.last, last.count < Self.joinLimit {
            outChunks[outChunks.count - 1].append(contentsOf: bytes)
        } else {
            outChunks.append(bytes)
        }
        unwritten += bytes.count
        peakQueued = max(peakQueued, unwritten)
        doorbell.yield()
    }

    private nonisolated func startTasks(doorbell: AsyncStream<Void>) {
        let stream = self.stream
        Task { [weak self] in
            do {
                for await _ in doorbell {
                    guard let chunks = await self?.takeOutgoing() else { return }
                    for bytes in chunks {
                        try await stream.write(bytes)
                        await self?.wrote(bytes.count)
                    }
                }
            } catch {
                await self?.fail(StoreError.wrap(error, peer: self?.peer ?? "?"))
            }
        }
        Task { [weak self] in
            while true {
                let chunk: [UInt8]
                do {
                    chunk = try await stream.read(maxLength: 1 << 20)
                } catch {
                    await self?.fail(StoreError.wrap(error, peer: self?.peer ?? "?"))
                    return
                }
                guard let self else { return }
                if chunk.isEmpty {
                    await self.fail(.closed(peer: self.peer))
                    return
                }
                if await !self.feed(chunk) { return }
            }
        }
    }

    /// Requests sent and not yet answered.
    public var inFlight: Int { waiters.count + (streaming ? 1 : 0) }

    /// True once the connection failed or was closed; it takes no more requests.
    public var isBroken: Bool { failure != nil }

    /// Sends a request and waits for its reply. Replies to NarFromPath go through `narSink`.
    public func request(_ request: WorkerRequest, narSink: NARSink? = nil) async throws(StoreError) -> WorkerResponse {
        let id = try send(request)
        if let narSink { narSinks[id] = narSink }
        return try await reply(id)
    }

    private func send(_ request: WorkerRequest) throws(StoreError) -> WorkerConnection.RequestID {
        if let failure { throw failure }
        if streaming { throw StoreError.busy(peer: peer) }
        do {
            let (id, bytes) = try wire.send(request)
            if pendingOps.isEmpty && unwritten == 0 { lastActivity = .now }
            pendingOps[id] = request.op
            enqueue(bytes)
            return id
        } catch {
            throw StoreError.protocolError(peer: peer, error)
        }
    }

    private func reply(_ id: WorkerConnection.RequestID) async throws(StoreError) -> WorkerResponse {
        if let result = early.removeValue(forKey: id) { return try result.get() }
        if let failure { throw failure }
        do {
            return try await withCheckedThrowingContinuation { waiters[id] = $0 }
        } catch {
            throw StoreError.wrap(error, peer: peer)
        }
    }

    /// Writes the NAR of a streamed AddToStoreNar, one frame per call.
    public struct FrameWriter: Sendable {
        let connection: DaemonConnection
        let id: WorkerConnection.RequestID

        /// Queues `bytes` (non-empty) as one frame; waits while the connection has a lot
        /// queued. Throws once the daemon refused the request or the connection broke.
        public func write(_ bytes: [UInt8]) async throws(StoreError) {
            guard !bytes.isEmpty else { return }
            try await connection.streamFrame(bytes, id)
        }
    }

    /// AddToStoreNar whose NAR `body` writes in frames as the connection drains, so memory
    /// stays bounded whatever the NAR's size. The daemon checks the NAR against `info`'s
    /// narHash and narSize and registers nothing on a mismatch. If `body` throws, the
    /// connection is closed before the NAR is complete, so the daemon registers nothing
    /// either, and `body`'s error is rethrown.
    public func addToStoreNar(_ info: PathInfo, repair: Bool = false, dontCheckSigs: Bool = false,
                              body: @Sendable (FrameWriter) async throws -> Void) async throws {
        try await streamed(.addToStoreNarStreaming(info, repair: repair, dontCheckSigs: dontCheckSigs), body: body)
    }

    /// AddMultipleToStore (1.32+) whose framed payload (the path count, then each path's
    /// info and NAR, as Nix writes it) `body` writes in frames, in bounded memory; the
    /// daemon checks each path as it does for AddToStoreNar. A throwing `body` closes the
    /// connection (paths already complete may stay added).
    public func addMultipleToStore(repair: Bool = false, dontCheckSigs: Bool = false,
                                   body: @Sendable (FrameWriter) async throws -> Void) async throws {
        try await streamed(.addMultipleToStoreStreaming(repair: repair, dontCheckSigs: dontCheckSigs), body: body)
    }

    /// Sends a request whose framed data `body` writes, then waits for its reply.
    private func streamed(_ request: WorkerRequest, body: @Sendable (FrameWriter) async throws -> Void) async throws {
        let id = try send(request)
        streaming = true
        defer { streaming = false }
        do {
            try await body(FrameWriter(connection: self, id: id))
        } catch {
            // The daemon holds a half-sent NAR: only closing the connection undoes it.
            streaming = false
            fail(.aborted(peer: peer, reason: "\(error)"))
            throw error
        }
        if let failure { throw failure }
        enqueue(FramedStream.end)
        streaming = false
        do {
            _ = try await reply(id)
        } catch {
            // Refused before it read the whole NAR: what it did not read would be taken for
            // requests, so this connection is done.
            if case .some(.failure) = early[id] { fail(.closed(peer: peer)) }
            throw error
        }
    }

    fileprivate func streamFrame(_ bytes: [UInt8], _ id: WorkerConnection.RequestID) async throws(StoreError) {
        if let failure { throw failure }
        if case let .failure(e) = early[id] {
            // Refused mid-NAR: the rest of our frames would be read as requests.
            fail(.closed(peer: peer))
            throw e
        }
        // Header and data as they are: the NAR chunk is queued without a copy.
        var header = WireWriter(capacity: 8)
        header.writeU64(UInt64(bytes.count))
        enqueue(header.bytes)
        enqueue(bytes)
        await drain()
        if let failure { throw failure }
    }

    /// Feeds bytes from the daemon; false once the connection is broken.
    private func feed(_ chunk: [UInt8]) async -> Bool {
        guard failure == nil else { return false }
        lastActivity = .now
        let events: [WorkerConnection.Event]
        do {
            events = try wire.receive(chunk)
        } catch {
            fail(.protocolError(peer: peer, error))
            return false
        }
        for event in events {
            switch event {
            case let .write(bytes):
                enqueue(bytes)
            case let .log(_, e):
                logHandler?(e)
            case let .narData(id, bytes):
                guard let sink = narSinks[id] else { continue }
                do {
                    try await sink(bytes)
                    // A slow sink is progress too: the daemon waits on us meanwhile.
                    lastActivity = .now
                } catch {
                    // The NAR broke its promise (more bytes than its size, a wrong hash) or
                    // its consumer failed: reading on to the NAR's end would let a peer that
                    // declares a huge file hold the request, so the connection ends now.
                    pendingOps[id] = nil
                    narSinks[id] = nil
                    settle(id, .failure(StoreError.sink(peer: peer, error)))
                    fail(.aborted(peer: peer, reason: "NAR refused: \(error)"))
                    return false
                }
            case let .response(id, response):
                pendingOps[id] = nil
                narSinks[id] = nil
                settle(id, .success(response))
            case let .failure(id, e):
                pendingOps[id] = nil
                narSinks[id] = nil
                settle(id, .failure(StoreError.daemon(peer: peer, e)))
            case .handshakeCompleted:
                continue
            }
        }
        return true
    }

    private func settle(_ id: WorkerConnection.RequestID, _ result: Result<WorkerResponse, StoreError>) {
        if let waiter = waiters.removeValue(forKey: id) {
            waiter.resume(with: result.mapError { $0 as any Error })
        } else {
            early[id] = result
        }
    }

    private func fail(_ error: StoreError) {
        guard failure == nil else { return }
        failure = error
        doorbell.finish()
        let draining = drainWaiters
        drainWaiters = []
        for w in draining { w.resume() }
        let pending = waiters
        waiters = [:]
        narSinks = [:]
        pendingOps = [:]
        for (_, w) in pending { w.resume(throwing: error) }
        let stream = self.stream
        Task { await stream.close() }
    }

    /// Closes the connection; requests still waiting fail.
    public func close() async {
        fail(.closed(peer: peer))
        await stream.close()
    }
}

/// Set once by a watchdog whose deadline passed.
final class ExpiryFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
