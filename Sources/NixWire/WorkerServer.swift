import NixCore

/// The daemon side of a worker-protocol connection over bytes: no sockets, no threads. The
/// caller feeds what it reads to `receive` and performs the returned actions in order; it
/// answers each `.request` (in order: clients may pipeline) with the bytes of `reply`,
/// `failure` or, for NarFromPath, `narHeader` followed by the NAR itself, unframed.
///
/// As upstream's daemon: MAGIC_1 is answered at once, features are exchanged from 1.38, the
/// trusted flag is sent from 1.35; a request that cannot be decoded, or an unknown
/// operation, is answered with STDERR_ERROR and the connection ends (`.close`).
public struct WorkerServer: Sendable {
    public enum Action: Sendable, Hashable {
        case write([UInt8])
        case handshakeCompleted(HandshakeResult)
        /// Answer it before the requests that follow.
        case request(WorkerRequest)
        /// Close the connection once the writes before this action are sent.
        case close
        /// A request of `streamedOps` whose framed data follows as `.data`, then `.dataEnd`;
        /// answer it after `.dataEnd`.
        case streamedRequest(WorkerRequest)
        /// A piece of the framed data of the streamed request just emitted.
        case data([UInt8])
        /// The streamed request's framed data ended: answer it now.
        case dataEnd
    }

    public let storeDir: StoreDirectory
    private var handshake: ServerHandshake
    private var reader: WireReader
    private var version: WorkerProtocolVersion?
    /// A request whose framed data is being skipped; emitted once the data has ended.
    private var skipping: (request: WorkerRequest, frames: FramedStreamDecoder)?
    /// Operations whose framed data is handed over (`.request`, `.data`..., `.dataEnd`)
    /// instead of skipped.
    public let streamedOps: Set<WorkerOp>
    /// A streamed request's framed data being handed over.
    private var streaming: FramedStreamDecoder?
    /// A request with a long list being read item by item.
    private var listRequest: ListRequest?
    private var closed = false

    /// - Parameters:
    ///   - ours: the newest version we speak (and the features we offer at 1.38).
    ///   - info: what the handshake tells the client (Nix version, trusted flag).
    public init(ours: WorkerProtocolVersion = .latest, info: ClientHandshakeInfo,
                storeDir: StoreDirectory = .default, limits: WireLimits = .default,
                streamedOps: Set<WorkerOp> = []) {
        self.storeDir = storeDir
        self.streamedOps = streamedOps
        handshake = ServerHandshake(ours: ours, info: info, storeDir: storeDir)
        reader = WireReader(limits: limits)
    }

    /// The negotiated version, once the handshake is done.
    public var negotiated: WorkerProtocolVersion? { version }

    /// Bytes parsed so far (those parsed again after a rewind counted again): linear in what
    /// arrived, however the requests were cut into chunks.
    public var bytesParsed: Int { reader.bytesParsed }

    private var context: WireContext {
        WireContext(version: version ?? .latest, storeDir: storeDir, limits: reader.limits)
    }

    /// Consumes `bytes`; returns what to do. A broken handshake throws (there is no one to
    /// tell: upstream closes without a word); later errors become `.write` + `.close`.
    public mutating func receive<C: Collection>(_ bytes: C) throws(WireError) -> [Action] where C.Element == UInt8 {
        guard !closed else { return [] }
        reader.feed(bytes)
        var actions: [Action] = []
        if version == nil {
            for a in try handshake.receive(from: &reader) {
                switch a {
                case let .write(b): actions.append(.write(b))
                case let .completed(r):
                    version = r.version
                    actions.append(.handshakeCompleted(r))
                }
            }
            guard version != nil else { return actions }
        }
        do {
            try decodeRequests(into: &actions)
        } catch {
            // As the daemon does when reading a request fails: report it, then hang up.
            closed = true
            actions.append(.write(failure(DaemonError(message: error.description))))
            actions.append(.close)
        }
        return actions
    }

    private mutating func decodeRequests(into actions: inout [Action]) throws(WireError) {
        let ctx = context
        while !closed {
            if var frames = streaming {
                while let event = try frames.next(from: &reader) {
                    switch event {
                    case let .data(bytes): actions.append(.data(bytes))
                    case .end: actions.append(.dataEnd)
                    }
                    if event == .end { break }
                }
                guard frames.finished else {
                    streaming = frames
                    return
                }
                streaming = nil
                continue
            }
            if var s = skipping {
                while let event = try s.frames.next(from: &reader) {
                    if event == .end { break }
                }
                guard s.frames.finished else {
                    skipping = s
                    return
                }
                skipping = nil
                actions.append(.request(s.request))
                continue
            }
            if listRequest != nil {
                guard let request = try listRequest!.read(from: &reader, ctx) else { return }
                listRequest = nil
                actions.append(.request(request))
                continue
            }
            var probe = reader
            guard let raw = try probe.attempt({ (r: inout WireReader) throws(WireError) in try r.readU64("operation") }) else {
                return
            }
            if let message = WorkerServer.unfollowable(raw, ctx.version) {
                // As Nix's daemon: report it and hang up.
                _ = reader.takeAvailable(max: 8)
                closed = true
                actions.append(.write(failure(DaemonError(message: message))))
                actions.append(.close)
                return
            }
            if let op = WorkerOp(rawValue: raw), ListRequest.operations.contains(op) {
                _ = reader.takeAvailable(max: 8)
                listRequest = ListRequest(op)
                continue
            }
            guard let request = try WorkerRequest.read(from: &reader, ctx, includeData: false) else { return }
            if request.op.hasFramedData(ctx.version) && streamedOps.contains(request.op) {
                actions.append(.streamedRequest(request))
                streaming = FramedStreamDecoder()
            } else if request.op.hasFramedData(ctx.version) {
                skipping = (request, FramedStreamDecoder())
            } else {
                actions.append(.request(request))
            }
        }
    }

    /// Why a request with this operation code cannot be followed, if it cannot.
    private static func unfollowable(_ raw: UInt64, _ v: WorkerProtocolVersion) -> String? {
        guard let op = WorkerOp(rawValue: raw) else { return "invalid operation \(raw)" }
        // Before 1.25 the dump follows unframed: there is no way to skip it.
        if op == .addToStore && !v.atLeast(25) { return "AddToStore before worker protocol 1.25 is not supported by nix-bridge" }
        return nil
    }

    // MARK: Answers

    /// STDERR_LAST, then the reply to a request of `op`.
    public func reply(_ reply: WorkerResponse, for op: WorkerOp) throws(WireError) -> [UInt8] {
        try reply.encodedReply(for: op, context)
    }

    /// The error that ends a request (STDERR_ERROR); the connection goes on.
    public func failure(_ error: DaemonError) -> [UInt8] {
        var w = WireWriter()
        StderrMessage.error(error).write(to: &w, context)
        return w.bytes
    }

    /// What precedes a NarFromPath answer's NAR: STDERR_LAST.
    public func narHeader() -> [UInt8] {
        var w = WireWriter()
        StderrMessage.last.write(to: &w, context)
        return w.bytes
    }

    /// A log message for the client while a request is being worked on.
    public func log(_ event: LogEvent) -> [UInt8] {
        var w = WireWriter()
        StderrMessage.log(event).write(to: &w, context)
        return w.bytes
    }
}
