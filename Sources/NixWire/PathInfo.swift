import NixCore

/// What the store knows about a valid path, without the path itself (the QueryPathInfo reply).
public struct UnkeyedValidPathInfo: Sendable, Hashable {
    public var deriver: StorePath?
    /// SHA-256 of the NAR; travels as base16 without the `sha256:` prefix.
    public var narHash: Hash
    public var references: Set<StorePath>
    /// Seconds since the epoch.
    public var registrationTime: Int64
    public var narSize: UInt64
    /// True when this store built the path itself (1.16+).
    public var ultimate: Bool
    /// `keyname:base64` signatures (1.16+).
    public var signatures: Set<String>
    public var ca: ContentAddress?

    public init(deriver: StorePath? = nil, narHash: Hash, references: Set<StorePath> = [], registrationTime: Int64 = 0,
                narSize: UInt64 = 0, ultimate: Bool = false, signatures: Set<String> = [], ca: ContentAddress? = nil) {
        self.deriver = deriver
        self.narHash = narHash
        self.references = references
        self.registrationTime = registrationTime
        self.narSize = narSize
        self.ultimate = ultimate
        self.signatures = signatures
        self.ca = ca
    }

    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        w.writeOptionalStorePath(deriver, ctx)
        w.writeString(narHash.string(.base16, withAlgorithm: false))
        w.writeStorePathSet(references, ctx)
        w.writeInt64(registrationTime)
        w.writeU64(narSize)
        if ctx.version.atLeast(16) {
            w.writeBool(ultimate)
            w.writeStringSet(signatures)
            w.writeString(ca?.description ?? "")
        }
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> UnkeyedValidPathInfo {
        let deriver = try r.readOptionalStorePath("deriver", ctx)
        let hashText = try r.readString("narHash")
        let narHash: Hash
        do { narHash = try Hash(parsing: hashText, algorithm: .sha256) } catch {
            throw .badValue(reading: "narHash", detail: error.description)
        }
        var info = UnkeyedValidPathInfo(deriver: deriver, narHash: narHash)
        info.references = Set(try r.readStorePaths("references", ctx))
        info.registrationTime = try r.readInt64("registrationTime")
        info.narSize = try r.readU64("narSize")
        if ctx.version.atLeast(16) {
            info.ultimate = try r.readBool("ultimate")
            info.signatures = Set(try r.readStrings("signatures"))
            info.ca = try ContentAddress.readOptional(from: &r)
        }
        return info
    }
}

/// A valid path with its info.
public struct ValidPathInfo: Sendable, Hashable {
    public var path: StorePath
    public var info: UnkeyedValidPathInfo

    public init(path: StorePath, info: UnkeyedValidPathInfo) {
        self.path = path
        self.info = info
    }

    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        w.writeStorePath(path, ctx)
        info.write(to: &w, ctx)
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> ValidPathInfo {
        let path = try r.readStorePath("path", ctx)
        return ValidPathInfo(path: path, info: try UnkeyedValidPathInfo.read(from: &r, ctx))
    }
}
