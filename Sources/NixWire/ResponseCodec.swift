import NixCore

extension WorkerResponse {
    /// Encodes the reply that follows STDERR_LAST (server side). `.narEnd` writes nothing:
    /// the server sends the NAR bytes themselves.
    public func write(to w: inout WireWriter, for op: WorkerOp, _ ctx: WireContext) throws(WireError) {
        switch (op, self) {
        case let (.isValidPath, .valid(b)):
            w.writeBool(b)
        case let (.queryValidPaths, .validPaths(paths)), let (.queryAllValidPaths, .validPaths(paths)):
            w.writeStorePathSet(paths, ctx)
        case let (.queryPathInfo, .pathInfo(info)):
            if let info {
                if ctx.version.atLeast(17) { w.writeBool(true) }
                info.write(to: &w, ctx)
            } else {
                guard ctx.version.atLeast(17) else { throw .notRepresentable("an invalid path needs an error before 1.17") }
                w.writeBool(false)
            }
        case let (.queryPathFromHashPart, .storePath(p)):
            w.writeOptionalStorePath(p, ctx)
        case (.narFromPath, .narEnd), (.setOptions, .done), (.addToStoreNar, .done), (.addMultipleToStore, .done):
            break
        case (.addSignatures, .done):
            w.writeU64(1)
        case let (.buildDerivation, .buildResult(res)):
            res.write(to: &w, ctx)
        case let (.buildPathsWithResults, .buildResults(list)):
            w.writeU64(UInt64(list.count))
            for k in list { try k.write(to: &w, ctx) }
        case let (.queryMissing, .missing(m)):
            w.writeStorePathSet(m.willBuild, ctx)
            w.writeStorePathSet(m.willSubstitute, ctx)
            w.writeStorePathSet(m.unknown, ctx)
            w.writeU64(m.downloadSize)
            w.writeU64(m.narSize)
        default:
            throw .notRepresentable("reply \(self) does not answer \(op)")
        }
    }

    /// Decodes the reply to `op` (client side); not for NarFromPath, whose reply is a raw NAR.
    public static func read(for op: WorkerOp, from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> WorkerResponse {
        switch op {
        case .isValidPath:
            return .valid(try r.readBool("IsValidPath reply"))
        case .queryValidPaths, .queryAllValidPaths:
            return .validPaths(Set(try r.readStorePaths("valid paths", ctx)))
        case .queryPathInfo:
            if ctx.version.atLeast(17) {
                let valid = try r.readBool("path info valid flag")
                if !valid { return .pathInfo(nil) }
            }
            return .pathInfo(try UnkeyedValidPathInfo.read(from: &r, ctx))
        case .queryPathFromHashPart:
            return .storePath(try r.readOptionalStorePath("store path", ctx))
        case .narFromPath:
            throw .unexpected("NarFromPath replies with a raw NAR, not a value")
        case .setOptions, .addToStoreNar, .addMultipleToStore:
            return .done
        case .addSignatures:
            _ = try r.readU64("AddSignatures reply")
            return .done
        case .buildDerivation:
            return .buildResult(try BuildResult.read(from: &r, ctx))
        case .buildPathsWithResults:
            return .buildResults(try r.readList("build results") { (r: inout WireReader) throws(WireError) in try KeyedBuildResult.read(from: &r, ctx) })
        case .queryMissing:
            let b = Set(try r.readStorePaths("willBuild", ctx))
            let s = Set(try r.readStorePaths("willSubstitute", ctx))
            let u = Set(try r.readStorePaths("unknown", ctx))
            return .missing(MissingInfo(willBuild: b, willSubstitute: s, unknown: u,
                                        downloadSize: try r.readU64("downloadSize"), narSize: try r.readU64("narSize")))
        }
    }
}

extension WorkerResponse {
    /// What a daemon sends once it is done: STDERR_LAST, then the reply.
    public func encodedReply(for op: WorkerOp, _ ctx: WireContext) throws(WireError) -> [UInt8] {
        var w = WireWriter()
        StderrMessage.last.write(to: &w, ctx)
        try write(to: &w, for: op, ctx)
        return w.bytes
    }
}
