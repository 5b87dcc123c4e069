import NixCore

/// How to build: normally, repairing, or checking determinism.
public enum BuildMode: UInt64, Sendable, Hashable {
    case normal = 0, repair = 1, check = 2

    public func write(to w: inout WireWriter) { w.writeU64(rawValue) }

    public static func read(from r: inout WireReader) throws(WireError) -> BuildMode {
        let v = try r.readU64("build mode")
        guard let m = BuildMode(rawValue: v) else { throw .badNumber(reading: "build mode", value: v) }
        return m
    }
}

/// Whether the daemon trusts the client (1.35+); on the wire as an optional: 0 unknown, 1, 2.
public enum TrustedFlag: Sendable, Hashable {
    case trusted, notTrusted

    public static func write(_ flag: TrustedFlag?, to w: inout WireWriter) {
        switch flag {
        case nil: w.writeU64(0)
        case .trusted?: w.writeU64(1)
        case .notTrusted?: w.writeU64(2)
        }
    }

    public static func read(from r: inout WireReader) throws(WireError) -> TrustedFlag? {
        switch try r.readU64("trusted flag") {
        case 0: return nil
        case 1: return .trusted
        case 2: return .notTrusted
        case let v: throw .badNumber(reading: "trusted flag", value: v)
        }
    }
}

/// What the daemon tells the client at the end of the handshake.
public struct ClientHandshakeInfo: Sendable, Hashable {
    /// The daemon's Nix version (1.33+), e.g. "2.8.0".
    public var daemonNixVersion: String?
    /// Whether the daemon trusts us (1.35+).
    public var remoteTrustsUs: TrustedFlag?

    public init(daemonNixVersion: String? = nil, remoteTrustsUs: TrustedFlag? = nil) {
        self.daemonNixVersion = daemonNixVersion
        self.remoteTrustsUs = remoteTrustsUs
    }

    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        if ctx.version.atLeast(33) { w.writeString(daemonNixVersion ?? "") }
        if ctx.version.atLeast(35) { TrustedFlag.write(remoteTrustsUs, to: &w) }
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> ClientHandshakeInfo {
        var info = ClientHandshakeInfo()
        if ctx.version.atLeast(33) { info.daemonNixVersion = try r.readString("daemon Nix version") }
        if ctx.version.atLeast(35) { info.remoteTrustsUs = try TrustedFlag.read(from: &r) }
        return info
    }
}
