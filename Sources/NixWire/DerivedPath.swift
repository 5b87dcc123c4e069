import NixCore

/// NixCore's `DerivedPath` on the wire: from 1.30 `path`, `drv!*`, `drv!a,b`; before,
/// `StorePathWithOutputs` (a bare `.drv` means all its outputs, so an opaque `.drv` cannot
/// be sent). The string forms are NixCore's `wireString`.
extension DerivedPath {
    public func write(to w: inout WireWriter, _ ctx: WireContext) throws(WireError) {
        do {
            w.writeString(try wireString(in: ctx.storeDir, protocolMinor: ctx.version.minor))
        } catch {
            throw .notRepresentable("\(error) (daemon protocol \(ctx.version))")
        }
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> DerivedPath {
        let s = try r.readString("derived path")
        do {
            return try DerivedPath(wireString: s, in: ctx.storeDir, protocolMinor: ctx.version.minor)
        } catch {
            throw .badValue(reading: "derived path", detail: error.description)
        }
    }
}
