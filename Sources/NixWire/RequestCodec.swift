import NixCore

extension WorkerRequest {
    /// The path info and flags that precede AddToStoreNar's NAR.
    static func writeAddToStoreNarHeader(_ info: ValidPathInfo, repair: Bool, dontCheckSigs: Bool,
                                         to w: inout WireWriter, _ ctx: WireContext) {
        w.writeStorePath(info.path, ctx)
        w.writeOptionalStorePath(info.info.deriver, ctx)
        w.writeString(info.info.narHash.string(.base16, withAlgorithm: false))
        w.writeStorePathSet(info.info.references, ctx)
        w.writeInt64(info.info.registrationTime)
        w.writeU64(info.info.narSize)
        w.writeBool(info.info.ultimate)
        w.writeStringSet(info.info.signatures)
        w.writeString(info.info.ca?.description ?? "")
        w.writeBool(repair)
        w.writeBool(dontCheckSigs)
    }

    /// Encodes the request, op code first. NAR data is framed from 1.23; for AddToStoreNar
    /// below 1.23 the NAR is not in these bytes: the daemon asks for it with STDERR_READ.
    public func write(to w: inout WireWriter, _ ctx: WireContext) throws(WireError) {
        let v = ctx.version
        guard v.atLeast(minimumVersion) else {
            throw .notRepresentable("\(op) needs worker protocol 1.\(minimumVersion), the connection has \(v)")
        }
        w.writeU64(op.rawValue)
        switch self {
        case let .isValidPath(p), let .queryPathInfo(p), let .narFromPath(p):
            w.writeStorePath(p, ctx)
        case let .queryValidPaths(paths, substitute):
            w.writeStorePathSet(paths, ctx)
            if v.atLeast(27) { w.writeBool(substitute) }
        case .queryAllValidPaths:
            break
        case let .queryPathFromHashPart(h):
            w.writeString(h)
        case let .addToStoreNar(p, repair, dontCheckSigs):
            WorkerRequest.writeAddToStoreNarHeader(p.info, repair: repair, dontCheckSigs: dontCheckSigs, to: &w, ctx)
            if v.atLeast(23) { FramedStream.encode(p.nar, into: &w) }
        case let .addToStoreNarStreaming(info, repair, dontCheckSigs):
            WorkerRequest.writeAddToStoreNarHeader(info, repair: repair, dontCheckSigs: dontCheckSigs, to: &w, ctx)
        case let .addMultipleToStore(paths, repair, dontCheckSigs):
            w.writeBool(repair)
            w.writeBool(dontCheckSigs)
            FramedStream.encode(WorkerRequest.multiplePayload(paths, ctx), into: &w)
        case let .addMultipleToStoreStreaming(repair, dontCheckSigs):
            w.writeBool(repair)
            w.writeBool(dontCheckSigs)
        case let .buildDerivation(drvPath, drv, mode):
            w.writeStorePath(drvPath, ctx)
            drv.write(to: &w, ctx)
            mode.write(to: &w)
        case let .buildPathsWithResults(paths, mode):
            w.writeU64(UInt64(paths.count))
            for p in paths { try p.write(to: &w, ctx) }
            mode.write(to: &w)
        case let .addSignatures(p, sigs):
            w.writeStorePath(p, ctx)
            w.writeStringSet(sigs)
        case let .queryMissing(paths):
            w.writeU64(UInt64(paths.count))
            for p in paths { try p.write(to: &w, ctx) }
        case let .setOptions(s):
            w.writeBool(s.keepFailed)
            w.writeBool(s.keepGoing)
            w.writeBool(s.tryFallback)
            w.writeU64(s.verbosity)
            w.writeU64(s.maxBuildJobs)
            w.writeU64(s.maxSilentTime)
            w.writeBool(s.useBuildHook)
            w.writeU64(s.verboseBuild ? 0 : 7)
            w.writeU64(s.logType)
            w.writeU64(s.printBuildTrace)
            w.writeU64(s.buildCores)
            w.writeBool(s.useSubstitutes)
            if v.atLeast(12) { w.writeStringMap(s.overrides) }
        }
    }

    /// The framed payload of AddMultipleToStore: count, then each path's info (1.16 form)
    /// followed by its NAR.
    static func multiplePayload(_ paths: [PathWithNAR], _ ctx: WireContext) -> [UInt8] {
        var inner = WireWriter(capacity: paths.reduce(64) { $0 + $1.nar.count + 512 })
        var innerCtx = ctx
        innerCtx.version = WorkerProtocolVersion(minor: 16)
        inner.writeU64(UInt64(paths.count))
        for p in paths {
            p.info.write(to: &inner, innerCtx)
            inner.writeRaw(p.nar)
        }
        return inner.bytes
    }

    public func encoded(_ ctx: WireContext) throws(WireError) -> [UInt8] {
        var w = WireWriter()
        try write(to: &w, ctx)
        return w.bytes
    }

    /// Server side: decodes one whole request; nil (nothing consumed) when more input is needed.
    /// AddToStoreNar below 1.23 cannot be decoded here: its NAR is tunnelled via STDERR_READ.
    /// With `includeData` false, AddToStoreNar and AddMultipleToStore come back without their
    /// data (empty NAR, empty path list) and the frames stay in `r`, for the caller to stream
    /// with `FramedStreamDecoder` (and, for AddMultipleToStore, `decodeMultiplePayload`).
    public static func read(from r: inout WireReader, _ ctx: WireContext, includeData: Bool = true) throws(WireError) -> WorkerRequest? {
        try r.attempt { (r: inout WireReader) throws(WireError) -> WorkerRequest in
            let v = ctx.version
            let raw = try r.readU64("operation")
            guard let op = WorkerOp(rawValue: raw) else { throw .badNumber(reading: "operation", value: raw) }
            switch op {
            case .isValidPath: return .isValidPath(try r.readStorePath("path", ctx))
            case .queryPathInfo: return .queryPathInfo(try r.readStorePath("path", ctx))
            case .narFromPath: return .narFromPath(try r.readStorePath("path", ctx))
            case .queryValidPaths:
                let paths = Set(try r.readStorePaths("paths", ctx))
                return .queryValidPaths(paths, substitute: v.atLeast(27) ? try r.readBool("substitute") : false)
            case .queryAllValidPaths: return .queryAllValidPaths
            case .queryPathFromHashPart: return .queryPathFromHashPart(try r.readString("hash part"))
            case .addToStoreNar:
                guard v.atLeast(23) else {
                    throw .notRepresentable("AddToStoreNar below protocol 1.23 tunnels its NAR through STDERR_READ")
                }
                let path = try r.readStorePath("path", ctx)
                var info16 = ctx
                info16.version = WorkerProtocolVersion(minor: 16)
                let info = try UnkeyedValidPathInfo.read(from: &r, info16)
                let repair = try r.readBool("repair")
                let dontCheckSigs = try r.readBool("dontCheckSigs")
                var nar: [UInt8] = []
                if includeData {
                    guard let all = try FramedStreamDecoder.decodeAll(from: &r) else { throw .truncated(reading: "NAR frames") }
                    nar = all
                }
                return .addToStoreNar(PathWithNAR(info: ValidPathInfo(path: path, info: info), nar: nar),
                                      repair: repair, dontCheckSigs: dontCheckSigs)
            case .addMultipleToStore:
                let repair = try r.readBool("repair")
                let dontCheckSigs = try r.readBool("dontCheckSigs")
                guard includeData else { return .addMultipleToStore([], repair: repair, dontCheckSigs: dontCheckSigs) }
                guard let payload = try FramedStreamDecoder.decodeAll(from: &r) else { throw .truncated(reading: "frames") }
                return .addMultipleToStore(try decodeMultiplePayload(payload, ctx), repair: repair, dontCheckSigs: dontCheckSigs)
            case .buildDerivation:
                let drvPath = try r.readStorePath("derivation path", ctx)
                let drv = try WireBasicDerivation.read(from: &r, ctx)
                return .buildDerivation(drvPath: drvPath, drv, try BuildMode.read(from: &r))
            case .buildPathsWithResults:
                let paths = try r.readList("derived paths") { (r: inout WireReader) throws(WireError) in try DerivedPath.read(from: &r, ctx) }
                return .buildPathsWithResults(paths, try BuildMode.read(from: &r))
            case .addSignatures:
                let p = try r.readStorePath("path", ctx)
                return .addSignatures(p, Set(try r.readStrings("signatures")))
            case .queryMissing:
                return .queryMissing(try r.readList("derived paths") { (r: inout WireReader) throws(WireError) in try DerivedPath.read(from: &r, ctx) })
            case .setOptions:
                var s = ClientSettings()
                s.keepFailed = try r.readBool("keepFailed")
                s.keepGoing = try r.readBool("keepGoing")
                s.tryFallback = try r.readBool("tryFallback")
                s.verbosity = try r.readU64("verbosity")
                s.maxBuildJobs = try r.readU64("maxBuildJobs")
                s.maxSilentTime = try r.readU64("maxSilentTime")
                s.useBuildHook = try r.readBool("useBuildHook")
                s.verboseBuild = try r.readU64("verboseBuild") == 0
                s.logType = try r.readU64("logType")
                s.printBuildTrace = try r.readU64("printBuildTrace")
                s.buildCores = try r.readU64("buildCores")
                s.useSubstitutes = try r.readBool("useSubstitutes")
                if v.atLeast(12) { s.overrides = try r.readStringMap("overrides") }
                return .setOptions(s)
            }
        }
    }

    /// Parses the de-framed data of AddMultipleToStore: a count, then each path's info in the
    /// 1.16 form followed by `narSize` bytes of NAR.
    public static func decodeMultiplePayload(_ payload: [UInt8], _ ctx: WireContext) throws(WireError) -> [PathWithNAR] {
        var inner = WireReader(payload, limits: ctx.limits)
        var info16 = ctx
        info16.version = WorkerProtocolVersion(minor: 16)
        let n = try inner.readCount("path count")
        var out: [PathWithNAR] = []
        for _ in 0..<n {
            let info = try ValidPathInfo.read(from: &inner, info16)
            guard info.info.narSize <= UInt64(inner.unreadCount) else {
                throw .badValue(reading: "AddMultipleToStore NAR", detail: "narSize \(info.info.narSize) exceeds the \(inner.unreadCount) bytes sent")
            }
            out.append(PathWithNAR(info: info, nar: Array(inner.takeAvailable(max: Int(info.info.narSize)))))
        }
        guard inner.isAtEnd else { throw .unexpected("\(inner.unreadCount) stray bytes after AddMultipleToStore paths") }
        return out
    }
}
