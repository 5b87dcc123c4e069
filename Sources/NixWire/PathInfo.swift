import NixCore

/// NixCore's `PathInfo` on the wire: Nix's `ValidPathInfo` (the path, then the rest) and,
/// in the QueryPathInfo reply, `UnkeyedValidPathInfo` (the rest only). The NAR hash travels
/// as base16 without `sha256:`; `ultimate`, the signatures and the content address from 1.16.
extension PathInfo: WireValue {
    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        w.writeStorePath(path, ctx)
        writeUnkeyed(to: &w, ctx)
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> PathInfo {
        let path = try r.readStorePath("path", ctx)
        return try readUnkeyed(path: path, from: &r, ctx)
    }

    /// Everything but the path (the QueryPathInfo reply).
    public func writeUnkeyed(to w: inout WireWriter, _ ctx: WireContext) {
        w.writeOptionalStorePath(deriver, ctx)
        w.writeString(narHash.string(.base16, withAlgorithm: false))
        w.writeStorePathSet(references, ctx)
        w.writeInt64(registrationTime)
        w.writeU64(narSize)
        if ctx.version.atLeast(16) {
            w.writeBool(ultimate)
            w.writeStringSet(sigs)
            w.writeString(ca?.description ?? "")
        }
    }

    /// Reads everything but the path, which the caller knows (it asked for it).
    public static func readUnkeyed(path: StorePath, from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> PathInfo {
        let deriver = try r.readOptionalStorePath("deriver", ctx)
        let hashText = try r.readString("narHash")
        let narHash: Hash
        do { narHash = try Hash(parsing: hashText, algorithm: .sha256) } catch {
            throw .badValue(reading: "narHash", detail: error.description)
        }
        var info = PathInfo(path: path, deriver: deriver, narHash: narHash, narSize: 0)
        info.references = Set(try r.readStorePaths("references", ctx))
        info.registrationTime = try r.readInt64("registrationTime")
        info.narSize = try r.readU64("narSize")
        if ctx.version.atLeast(16) {
            info.ultimate = try r.readBool("ultimate")
            info.sigs = Set(try r.readStrings("signatures"))
            info.ca = try ContentAddress.readOptional(from: &r)
        }
        return info
    }
}
