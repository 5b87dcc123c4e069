import NixCore

/// NixCore's `BasicDerivation` as BuildDerivation carries it (Nix's `writeDerivation` /
/// `readDerivation`): each output as three strings (path, `method+algo`, hash), the sources,
/// platform, builder, args and environment. The name is not sent: it is the derivation
/// path's (`Derivation::nameFromPath`).
extension BasicDerivation {
    public func write(to w: inout WireWriter, _ ctx: WireContext) throws(WireError) {
        let fields: [(name: String, path: String, hashAlgo: String, hash: String)]
        do { fields = try outputFields(in: ctx.storeDir) } catch {
            throw .notRepresentable("derivation '\(name)': \(error)")
        }
        w.writeU64(UInt64(fields.count))
        for f in fields {
            w.writeString(f.name)
            w.writeString(f.path)
            w.writeString(f.hashAlgo)
            w.writeString(f.hash)
        }
        w.writeStorePathSet(inputSrcs, ctx)
        w.writeString(system)
        w.writeString(builder)
        w.writeStrings(args)
        w.writeStringMap(env)
    }

    /// Reads the derivation at `drvPath`, whose name it takes.
    public static func read(from r: inout WireReader, _ ctx: WireContext, drvPath: StorePath) throws(WireError) -> BasicDerivation {
        let name = drvPath.name.hasSuffix(".drv") ? String(drvPath.name.dropLast(4)) : drvPath.name
        let n = try r.readCount("derivation outputs")
        var outputs: [String: DerivationOutput] = [:]
        for _ in 0..<n {
            let outputName = try r.readString("output name")
            let path = try r.readString("output path")
            let hashAlgo = try r.readString("output hash algorithm")
            let hash = try r.readString("output hash")
            do {
                outputs[outputName] = try DerivationOutput(path: path, hashAlgo: hashAlgo, hash: hash, drvName: name,
                                                           outputName: outputName, storeDirectory: ctx.storeDir)
            } catch {
                throw .badValue(reading: "derivation output '\(outputName)'", detail: "\(error)")
            }
        }
        return BasicDerivation(name: name, outputs: outputs, inputSrcs: Set(try r.readStorePaths("inputSrcs", ctx)),
                               system: try r.readString("platform"), builder: try r.readString("builder"),
                               args: try r.readStrings("args"), env: try r.readStringMap("env"))
    }
}
