import NixCore

/// The client side of a worker-protocol connection over bytes: no sockets, no threads. The
/// caller writes what `start`/`send` return and feeds what it reads to `receive`, which turns
/// it into events. Requests may be pipelined: replies come in request order and are matched
/// to requests first-in, first-out.
public struct WorkerConnection: Sendable {
    /// Identifies a request among those in flight.
    public struct RequestID: Sendable, Hashable, CustomStringConvertible {
        public let value: UInt64
        public var description: String { "#\(value)" }
    }

    public enum Event: Sendable, Hashable {
        /// Bytes to send to the daemon.
        case write([UInt8])
        case handshakeCompleted(HandshakeResult)
        /// A log message; nil request during the handshake.
        case log(RequestID?, LogEvent)
        /// A piece of the NAR that answers a NarFromPath request.
        case narData(RequestID, [UInt8])
        case response(RequestID, WorkerResponse)
        /// The daemon reported an error for this request.
        case failure(RequestID, DaemonError)
    }

    private struct Pending: Sendable {
        enum Phase: Sendable { case stderr, reply, nar, narError }
        let id: RequestID
        /// What is answered (its path names QueryPathInfo's reply).
        let request: WorkerRequest
        var op: WorkerOp { request.op }
        var phase = Phase.stderr
        /// NAR bytes the daemon will ask for with STDERR_READ (AddToStoreNar before 1.23).
        var tunnelled: ArraySlice<UInt8> = []
        /// Whether this request tunnels data (and holds back later requests).
        var tunnels = false
        /// NAR bytes handed to the detector so far, and the last few of them.
        var narOffset = 0
        var narTail: [UInt8] = []
        /// A QueryValidPaths (or QueryAllValidPaths) reply read so far: paths still to come, and those read.
        var listRemaining: Int?
        var paths: Set<StorePath> = []
        /// Bytes of that reply consumed so far (for the message cap).
        var listBytes = 0
    }

    /// How many trailing NAR bytes to keep for finding an error the daemon sent mid-NAR.
    private static let narTailSize = 64

    public let storeDir: StoreDirectory
    private var handshake: ClientHandshake
    private var reader: WireReader
    private var version: WorkerProtocolVersion?
    private var pending: [Pending] = []
    private var nextID: UInt64 = 1
    private var broken: WireError?
    private let makeDetector: @Sendable () -> any NARBoundaryDetector
    /// True while a request whose data the daemon pulls with STDERR_READ (AddToStoreNar before
    /// 1.23) is unfinished: our answers must come right after it in the stream, so later
    /// requests wait in `held` until it is done.
    private var tunnelOpen = false
    /// Finds the end of the NAR now arriving (for the request at the head of `pending`). Kept
    /// out of `Pending` so it is mutated in place, never copied with its buffers.
    private var narDetector: (any NARBoundaryDetector)?
    private var held: [(bytes: [UInt8], tunnels: Bool)] = []

    /// - Parameters:
    ///   - version: what we offer; the connection uses min(this, the daemon's).
    ///   - narDetector: makes a fresh NAR parser for each NarFromPath reply.
    public init(version: WorkerProtocolVersion = .latest, storeDir: StoreDirectory = .default, limits: WireLimits = .default,
                narDetector: @escaping @Sendable () -> any NARBoundaryDetector) {
        self.storeDir = storeDir
        self.handshake = ClientHandshake(ours: version, storeDir: storeDir)
        self.reader = WireReader(limits: limits)
        self.makeDetector = narDetector
    }

    /// The negotiated version once the handshake is done.
    public var negotiatedVersion: WorkerProtocolVersion? { version }

    /// Requests sent and not yet answered.
    public var inFlight: Int { pending.count }

    /// Bytes received but not yet used (a reply still incomplete).
    public var bufferedByteCount: Int { reader.unreadCount }

    /// Bytes parsed so far (those parsed again after a rewind counted again), NARs aside.
    public var bytesParsed: Int { reader.bytesParsed }

    /// Call when the daemon closed the stream: why that was early, or nil if nothing was
    /// outstanding.
    public func closedError() -> WireError? {
        if let broken { return broken }
        if version == nil { return .truncated(reading: "the handshake") }
        guard let p = pending.first else { return nil }
        return .truncated(reading: "the reply to \(p.op) \(p.id) (\(pending.count) request(s) unanswered)")
    }

    /// The opening bytes (MAGIC_1).
    public mutating func start() -> [UInt8] { handshake.start() }

    /// Encodes a request and queues it for its reply. Only after the handshake completed.
    /// The bytes are empty when the request must wait behind an AddToStoreNar below 1.23; they
    /// come later as a `.write` event.
    public mutating func send(_ request: WorkerRequest) throws(WireError) -> (RequestID, [UInt8]) {
        if let broken { throw broken }
        guard let version else { throw .unexpected("cannot send \(request.op) before the handshake completed") }
        let ctx = WireContext(version: version, storeDir: storeDir, limits: reader.limits)
        let bytes = try request.encoded(ctx)
        let id = RequestID(value: nextID)
        nextID += 1
        var p = Pending(id: id, request: request)
        var tunnels = false
        if case let .addToStoreNar(path, _, _) = request, !version.atLeast(23) {
            p.tunnelled = path.nar[...]
            p.tunnels = true
            tunnels = true
        }
        pending.append(p)
        if tunnelOpen {
            held.append((bytes, tunnels))
            return (id, [])
        }
        tunnelOpen = tunnels
        return (id, bytes)
    }

    /// After a tunnelling request finished: the held requests up to the next tunnelling one.
    private mutating func releaseHeld(into events: inout [Event]) {
        tunnelOpen = false
        var out: [UInt8] = []
        while !held.isEmpty && !tunnelOpen {
            let h = held.removeFirst()
            out += h.bytes
            tunnelOpen = h.tunnels
        }
        if !out.isEmpty { events.append(.write(out)) }
    }

    /// Feeds bytes from the daemon. A thrown error means the stream is corrupt: the
    /// connection is unusable from then on.
    public mutating func receive<C: Collection>(_ bytes: C) throws(WireError) -> [Event] where C.Element == UInt8 {
        if let broken { throw broken }
        reader.feed(bytes)
        do {
            return try process()
        } catch {
            broken = error
            throw error
        }
    }

    private mutating func process() throws(WireError) -> [Event] {
        var events: [Event] = []
        if version == nil {
            for a in try handshake.receive(from: &reader) {
                switch a {
                case let .write(b): events.append(.write(b))
                case let .log(e): events.append(.log(nil, e))
                case let .completed(res):
                    version = res.version
                    events.append(.handshakeCompleted(res))
                }
            }
            if version == nil { return events }
        }
        let ctx = WireContext(version: version!, storeDir: storeDir, limits: reader.limits)
        while var p = pending.first {
            switch p.phase {
            case .stderr:
                guard let msg = try reader.attempt(reading: "a message from the daemon about \(p.op)", {
                    (r: inout WireReader) throws(WireError) in try StderrMessage.read(from: &r, ctx)
                }) else { return events }
                switch msg {
                case let .log(e):
                    events.append(.log(p.id, e))
                case let .read(n):
                    // Answer with the next slice of the tunnelled NAR (AddToStoreNar before 1.23).
                    let chunk = p.tunnelled.prefix(n)
                    p.tunnelled = p.tunnelled.dropFirst(chunk.count)
                    var w = WireWriter()
                    w.writeBytes(chunk)
                    events.append(.write(w.bytes))
                    pending[0] = p
                case let .error(e):
                    pending.removeFirst()
                    events.append(.failure(p.id, e))
                    if p.tunnels { releaseHeld(into: &events) }
                case .last:
                    if p.tunnels { releaseHeld(into: &events) }
                    if p.op == .narFromPath {
                        p.phase = .nar
                        narDetector = makeDetector()
                    } else {
                        p.phase = .reply
                    }
                    pending[0] = p
                }
            case .reply where p.op == .queryValidPaths || p.op == .queryAllValidPaths:
                // Possibly thousands of paths: read them one by one as they arrive, so a
                // reply fed in many chunks is parsed once, not again from its start each time.
                if p.listRemaining == nil {
                    guard let n = try reader.attempt(reading: "the reply to \(p.op)", {
                        (r: inout WireReader) throws(WireError) in try r.readCount("valid paths")
                    }) else { return events }
                    p.listRemaining = n
                    p.listBytes = 8
                }
                // Take the set out so inserting never copies it.
                var paths = p.paths
                p.paths = []
                pending[0].paths = []
                while p.listRemaining! > 0 {
                    let before = reader.unreadCount
                    guard let path = try reader.attempt(reading: "the reply to \(p.op)", already: p.listBytes, {
                        (r: inout WireReader) throws(WireError) in try r.readStorePath("valid path", ctx)
                    }) else {
                        p.paths = paths
                        pending[0] = p
                        return events
                    }
                    p.listBytes += before - reader.unreadCount
                    paths.insert(path)
                    p.listRemaining! -= 1
                }
                pending.removeFirst()
                events.append(.response(p.id, .validPaths(paths)))
            case .reply:
                guard let res = try reader.attempt(reading: "the reply to \(p.op)", { (r: inout WireReader) throws(WireError) in
                    try WorkerResponse.read(for: p.request, from: &r, ctx)
                }) else { return events }
                pending.removeFirst()
                events.append(.response(p.id, res))
            case .nar:
                let available = reader.takeAvailable()
                let progress: NARBoundaryProgress
                do { progress = try narDetector!.consume(available) } catch {
                    narDetector = nil
                    // Nix 2.8 starts the NAR, then reports e.g. a vanished path as STDERR_ERROR
                    // inside it. Look for that message where the NAR went wrong: no later than
                    // the string the parser failed on, whose bytes have all arrived however the
                    // stream was cut (bytes after it must not decide).
                    let window = p.narTail + available
                    let windowStart = p.narOffset - p.narTail.count
                    let end = (error as? NARError).map { e in
                        Int(clamping: e.offset) - windowStart + (e.kind == .nonZeroPadding ? 0 : 8)
                    } ?? window.count
                    guard let start = WorkerConnection.errorTagOffset(in: Array(window.prefix(max(0, end))),
                                                                      streamOffset: windowStart)
                    else { throw .badValue(reading: "NAR from NarFromPath", detail: "\(error)") }
                    var rest = WireReader(limits: reader.limits)
                    rest.bytesParsed = reader.bytesParsed
                    rest.feed((p.narTail + available).dropFirst(start))
                    rest.feed(reader.takeAll())
                    reader = rest
                    p.phase = .narError
                    pending[0] = p
                    continue
                }
                guard progress.consumed <= available.count else {
                    throw .unexpected("NAR detector claimed \(progress.consumed) of \(available.count) bytes")
                }
                if progress.consumed > 0 {
                    events.append(.narData(p.id, Array(available.prefix(progress.consumed))))
                }
                if progress.finished {
                    // Give back what follows the NAR: the next reply.
                    var rest = WireReader(limits: reader.limits)
                    rest.bytesParsed = reader.bytesParsed
                    rest.feed(available.dropFirst(progress.consumed))
                    rest.feed(reader.takeAll())
                    reader = rest
                    narDetector = nil
                    pending.removeFirst()
                    events.append(.response(p.id, .narEnd))
                } else {
                    guard progress.consumed == available.count else {
                        throw .unexpected("NAR detector stopped early without finishing")
                    }
                    // Only the last bytes: never copy the whole chunk for them.
                    p.narTail = available.count >= WorkerConnection.narTailSize
                        ? Array(available.suffix(WorkerConnection.narTailSize))
                        : Array((p.narTail + available).suffix(WorkerConnection.narTailSize))
                    p.narOffset += available.count
                    pending[0] = p
                    return events
                }
            case .narError:
                guard let msg = try reader.attempt({ (r: inout WireReader) throws(WireError) in try StderrMessage.read(from: &r, ctx) })
                else { return events }
                guard case let .error(e) = msg else { throw .unexpected("corrupt NAR from NarFromPath") }
                // The daemon cannot resume after a half-sent NAR: fail this request and the connection.
                pending.removeFirst()
                events.append(.failure(p.id, e))
                broken = .daemon(e)
                return events
            }
        }
        return events
    }

    /// The first 8-aligned (in the NAR stream) position of a STDERR_ERROR tag in `window`.
    static func errorTagOffset(in window: [UInt8], streamOffset: Int) -> Int? {
        var i = (8 - streamOffset % 8) % 8
        while i + 8 <= window.count {
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(window[i + k]) << (8 * UInt64(k)) }
            if v == StderrTag.error { return i }
            i += 8
        }
        return nil
    }
}
