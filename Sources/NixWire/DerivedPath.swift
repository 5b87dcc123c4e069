import NixCore

/// Which outputs of a derivation are wanted.
public enum OutputsSpec: Sendable, Hashable {
    case all
    case names(Set<String>)
}

/// Something to build or fetch: a plain store path, or outputs of a derivation.
public enum DerivedPath: Sendable, Hashable {
    case opaque(StorePath)
    case built(drvPath: StorePath, outputs: OutputsSpec)

    /// From 1.30 `path`, `drv!*`, `drv!a,b`; before, `StorePathWithOutputs` (a bare `.drv`
    /// means all its outputs, so an opaque `.drv` cannot be sent).
    public func write(to w: inout WireWriter, _ ctx: WireContext) throws(WireError) {
        let dir = ctx.storeDir
        switch self {
        case let .opaque(p):
            if !ctx.version.atLeast(30) && p.isDerivation {
                throw .notRepresentable("trying to request '\(dir.print(p))', but daemon protocol \(ctx.version) is too old (< 1.30) to request a derivation file")
            }
            w.writeString(dir.print(p))
        case let .built(drv, .all):
            w.writeString(ctx.version.atLeast(30) ? dir.print(drv) + "!*" : dir.print(drv))
        case let .built(drv, .names(names)):
            w.writeString(dir.print(drv) + "!" + WireWriter.sortedByBytes(names).joined(separator: ","))
        }
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> DerivedPath {
        let s = try r.readString("derived path")
        let parts = s.split(separator: "!", maxSplits: 1, omittingEmptySubsequences: false)
        let path: StorePath
        do { path = try ctx.storeDir.parse(parts[0]) } catch {
            throw .badValue(reading: "derived path", detail: error.description)
        }
        if parts.count == 1 {
            if !ctx.version.atLeast(30) && path.isDerivation { return .built(drvPath: path, outputs: .all) }
            return .opaque(path)
        }
        let outs = parts[1]
        if outs == "*" && ctx.version.atLeast(30) { return .built(drvPath: path, outputs: .all) }
        let names = outs.split(separator: ",").map(String.init)
        guard !names.isEmpty else { throw .badValue(reading: "derived path", detail: "empty output list in '\(s)'") }
        return .built(drvPath: path, outputs: .names(Set(names)))
    }
}
