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

/// One derivation output as BuildDerivation sends it: strings, empty when not applicable.
public struct WireDerivationOutput: Sendable, Hashable {
    /// Full store path, or "" for floating content-addressed outputs.
    public var path: String
    /// "" or e.g. "r:sha256".
    public var hashAlgo: String
    /// "" or the expected hash in base16.
    public var hash: String

    public init(path: String, hashAlgo: String = "", hash: String = "") {
        self.path = path
        self.hashAlgo = hashAlgo
        self.hash = hash
    }
}

/// A derivation as the worker protocol carries it (Nix's BasicDerivation, no input derivations).
public struct WireBasicDerivation: Sendable, Hashable {
    public var outputs: [String: WireDerivationOutput]
    public var inputSrcs: Set<StorePath>
    public var platform: String
    public var builder: String
    public var args: [String]
    public var env: [String: String]

    public init(outputs: [String: WireDerivationOutput], inputSrcs: Set<StorePath> = [], platform: String,
                builder: String, args: [String] = [], env: [String: String] = [:]) {
        self.outputs = outputs
        self.inputSrcs = inputSrcs
        self.platform = platform
        self.builder = builder
        self.args = args
        self.env = env
    }

    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        w.writeU64(UInt64(outputs.count))
        for name in WireWriter.sortedByBytes(outputs.keys) {
            let o = outputs[name]!
            w.writeString(name)
            w.writeString(o.path)
            w.writeString(o.hashAlgo)
            w.writeString(o.hash)
        }
        w.writeStorePathSet(inputSrcs, ctx)
        w.writeString(platform)
        w.writeString(builder)
        w.writeStrings(args)
        w.writeStringMap(env)
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> WireBasicDerivation {
        let n = try r.readCount("derivation outputs")
        var outputs: [String: WireDerivationOutput] = [:]
        for _ in 0..<n {
            let name = try r.readString("output name")
            outputs[name] = WireDerivationOutput(path: try r.readString("output path"),
                                                 hashAlgo: try r.readString("output hash algorithm"),
                                                 hash: try r.readString("output hash"))
        }
        return WireBasicDerivation(outputs: outputs, inputSrcs: Set(try r.readStorePaths("inputSrcs", ctx)),
                                   platform: try r.readString("platform"), builder: try r.readString("builder"),
                                   args: try r.readStrings("args"), env: try r.readStringMap("env"))
    }
}
