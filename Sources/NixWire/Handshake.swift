/// The worker protocol's magic numbers.
public enum WorkerMagic {
    /// Client hello, "cxin".
    public static let client: UInt64 = 0x6e69_7863
    /// Daemon hello, "oixd".
    public static let server: UInt64 = 0x6478_696f
}

/// What a finished handshake agreed.
public struct HandshakeResult: Sendable, Hashable {
    /// min(ours, theirs), with the features both sides named (1.38+).
    public var version: WorkerProtocolVersion
    /// What the peer announced.
    public var peerVersion: WorkerProtocolVersion
    public var info: ClientHandshakeInfo
}

/// Client side of the handshake: MAGIC_1; read MAGIC_2 and the daemon's version; send ours,
/// (1.38) our features, (1.14) CPU affinity 0, (1.11) reserveSpace 0; read (1.38) the daemon's
/// features, (1.33) its Nix version, (1.35) the trusted flag, then stderr messages up to LAST.
public struct ClientHandshake: Sendable {
    enum State: Sendable { case initial, awaitingHello, awaitingFeatures, awaitingInfo, awaitingLast, done }

    public enum Action: Sendable, Hashable {
        case write([UInt8])
        case log(LogEvent)
        case completed(HandshakeResult)
    }

    public let ours: WorkerProtocolVersion
    public let storeDir: StoreDirectory
    private var state = State.initial
    private var peer = WorkerProtocolVersion(minor: 0)
    private var negotiated = WorkerProtocolVersion(minor: 0)
    private var info = ClientHandshakeInfo()

    public init(ours: WorkerProtocolVersion = .latest, storeDir: StoreDirectory = .default) {
        self.ours = ours
        self.storeDir = storeDir
    }

    public var isDone: Bool { if case .done = state { return true } else { return false } }

    /// The first bytes to send: MAGIC_1 alone (Nix 2.8 and Lix do the same and wait).
    public mutating func start() -> [UInt8] {
        precondition(state == .initial, "handshake already started")
        state = .awaitingHello
        var w = WireWriter()
        w.writeU64(WorkerMagic.client)
        return w.bytes
    }

    /// Consumes what it can of `r`; returns what to do. Stops right after completion, leaving
    /// later bytes (replies to pipelined requests) in `r`.
    public mutating func receive(from r: inout WireReader) throws(WireError) -> [Action] {
        var actions: [Action] = []
        while true {
            let ctx = WireContext(version: negotiated, storeDir: storeDir, limits: r.limits)
            switch state {
            case .initial, .done:
                return actions
            case .awaitingHello:
                guard let (magic, v) = try r.attempt({ (r: inout WireReader) throws(WireError) in
                    (try r.readU64("daemon magic"), try r.readU64("daemon protocol version"))
                }) else { return actions }
                guard magic == WorkerMagic.server else { throw .badMagic(expected: WorkerMagic.server, got: magic) }
                guard let pv = WorkerProtocolVersion(wire: v) else {
                    throw .unsupportedVersion(peer: "0x" + String(v, radix: 16), negotiated: "none", minimum: WorkerProtocolVersion.minimum.description)
                }
                peer = pv
                negotiated = WorkerProtocolVersion(minor: min(pv.minor, ours.minor))
                guard negotiated >= .minimum else {
                    throw .unsupportedVersion(peer: pv.description, negotiated: negotiated.description, minimum: WorkerProtocolVersion.minimum.description)
                }
                var w = WireWriter()
                w.writeU64(ours.wire)
                if negotiated.atLeast(38) { w.writeStringSet(ours.features) }
                if negotiated.atLeast(14) { w.writeU64(0) }  // obsolete CPU affinity: none
                if negotiated.atLeast(11) { w.writeU64(0) }  // obsolete reserveSpace
                actions.append(.write(w.bytes))
                state = negotiated.atLeast(38) ? .awaitingFeatures : .awaitingInfo
            case .awaitingFeatures:
                guard let theirs = try r.attempt({ (r: inout WireReader) throws(WireError) in try r.readStrings("daemon features") })
                else { return actions }
                negotiated.features = ours.features.intersection(theirs)
                peer.features = Set(theirs)
                state = .awaitingInfo
            case .awaitingInfo:
                guard let i = try r.attempt({ (r: inout WireReader) throws(WireError) in try ClientHandshakeInfo.read(from: &r, ctx) })
                else { return actions }
                info = i
                state = .awaitingLast
            case .awaitingLast:
                guard let msg = try r.attempt({ (r: inout WireReader) throws(WireError) in try StderrMessage.read(from: &r, ctx) })
                else { return actions }
                switch msg {
                case let .log(e): actions.append(.log(e))
                case .last:
                    state = .done
                    actions.append(.completed(HandshakeResult(version: negotiated, peerVersion: peer, info: info)))
                    return actions
                case let .error(e): throw .daemon(e)
                case .read: throw .unexpected("the daemon asked for data during the handshake")
                }
            }
        }
    }
}

/// Daemon side of the handshake: answers MAGIC_1 at once, then reads the client's version,
/// features (1.38), affinity and reserveSpace, and sends the handshake info and STDERR_LAST.
public struct ServerHandshake: Sendable {
    enum State: Sendable { case awaitingMagic, awaitingVersion, awaitingFeatures, awaitingAffinity, awaitingReserve, done }

    public enum Action: Sendable, Hashable {
        case write([UInt8])
        case completed(HandshakeResult)
    }

    public let ours: WorkerProtocolVersion
    /// Sent to the client at the end (Nix version from 1.33, trust from 1.35).
    public var info: ClientHandshakeInfo
    public let storeDir: StoreDirectory
    private var state = State.awaitingMagic
    private var peer = WorkerProtocolVersion(minor: 0)
    private var negotiated = WorkerProtocolVersion(minor: 0)

    public init(ours: WorkerProtocolVersion = .latest, info: ClientHandshakeInfo, storeDir: StoreDirectory = .default) {
        self.ours = ours
        self.info = info
        self.storeDir = storeDir
    }

    public var isDone: Bool { if case .done = state { return true } else { return false } }

    public mutating func receive(from r: inout WireReader) throws(WireError) -> [Action] {
        var actions: [Action] = []
        while true {
            switch state {
            case .done:
                return actions
            case .awaitingMagic:
                guard let magic = try r.attempt({ (r: inout WireReader) throws(WireError) in try r.readU64("client magic") })
                else { return actions }
                guard magic == WorkerMagic.client else { throw .badMagic(expected: WorkerMagic.client, got: magic) }
                var w = WireWriter()
                w.writeU64(WorkerMagic.server)
                w.writeU64(ours.wire)
                actions.append(.write(w.bytes))
                state = .awaitingVersion
            case .awaitingVersion:
                guard let v = try r.attempt({ (r: inout WireReader) throws(WireError) in try r.readU64("client protocol version") })
                else { return actions }
                guard let pv = WorkerProtocolVersion(wire: v) else {
                    throw .unsupportedVersion(peer: "0x" + String(v, radix: 16), negotiated: "none", minimum: WorkerProtocolVersion.minimum.description)
                }
                peer = pv
                negotiated = WorkerProtocolVersion(minor: min(pv.minor, ours.minor))
                guard negotiated >= .minimum else {
                    throw .unsupportedVersion(peer: pv.description, negotiated: negotiated.description, minimum: WorkerProtocolVersion.minimum.description)
                }
                state = negotiated.atLeast(38) ? .awaitingFeatures : .awaitingAffinity
            case .awaitingFeatures:
                guard let theirs = try r.attempt({ (r: inout WireReader) throws(WireError) in try r.readStrings("client features") })
                else { return actions }
                peer.features = Set(theirs)
                negotiated.features = ours.features.intersection(theirs)
                var w = WireWriter()
                w.writeStringSet(ours.features)
                actions.append(.write(w.bytes))
                state = .awaitingAffinity
            case .awaitingAffinity:
                if !negotiated.atLeast(14) {
                    state = .awaitingReserve
                    continue
                }
                guard let _ = try r.attempt({ (r: inout WireReader) throws(WireError) in
                    // A non-zero flag is followed by the (ignored) CPU number.
                    if try r.readU64("CPU affinity flag") != 0 { _ = try r.readU64("CPU affinity") }
                }) else { return actions }
                state = .awaitingReserve
            case .awaitingReserve:
                if negotiated.atLeast(11) {
                    guard let _ = try r.attempt({ (r: inout WireReader) throws(WireError) in try r.readU64("reserveSpace") })
                    else { return actions }
                }
                let ctx = WireContext(version: negotiated, storeDir: storeDir, limits: r.limits)
                var w = WireWriter()
                info.write(to: &w, ctx)
                StderrMessage.last.write(to: &w, ctx)
                actions.append(.write(w.bytes))
                actions.append(.completed(HandshakeResult(version: negotiated, peerVersion: peer, info: info)))
                state = .done
                return actions
            }
        }
    }
}

import NixCore
