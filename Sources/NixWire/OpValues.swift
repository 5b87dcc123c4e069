import NixCore

/// The client's settings as SetOptions sends them. Obsolete fields are sent as Nix sends them.
public struct ClientSettings: Sendable, Hashable {
    public var keepFailed = false
    public var keepGoing = false
    public var tryFallback = false
    /// Nix's verbosity (0 error ... 7 vomit); Nix sends lvlError.. by default.
    public var verbosity: UInt64 = 0
    public var maxBuildJobs: UInt64 = 1
    public var maxSilentTime: UInt64 = 0
    /// Obsolete; Nix sends true.
    public var useBuildHook = true
    /// Sent as a verbosity: lvlError (0) when true, lvlVomit (7) when false, as Nix does.
    public var verboseBuild = true
    /// Obsolete.
    public var logType: UInt64 = 0
    /// Obsolete.
    public var printBuildTrace: UInt64 = 0
    public var buildCores: UInt64 = 0
    public var useSubstitutes = true
    /// Other settings by name (1.12+).
    public var overrides: [String: String] = [:]

    public init() {}
}

extension ClientSettings: WireValue {
    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        w.writeBool(keepFailed)
        w.writeBool(keepGoing)
        w.writeBool(tryFallback)
        w.writeU64(verbosity)
        w.writeU64(maxBuildJobs)
        w.writeU64(maxSilentTime)
        w.writeBool(useBuildHook)
        w.writeU64(verboseBuild ? 0 : 7)
        w.writeU64(logType)
        w.writeU64(printBuildTrace)
        w.writeU64(buildCores)
        w.writeBool(useSubstitutes)
        if ctx.version.atLeast(12) { w.writeStringMap(overrides) }
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> ClientSettings {
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
        if ctx.version.atLeast(12) { s.overrides = try r.readStringMap("overrides") }
        return s
    }
}

/// QueryMissing's answer.
public struct MissingInfo: Sendable, Hashable {
    public var willBuild: Set<StorePath>
    public var willSubstitute: Set<StorePath>
    public var unknown: Set<StorePath>
    public var downloadSize: UInt64
    public var narSize: UInt64

    public init(willBuild: Set<StorePath> = [], willSubstitute: Set<StorePath> = [], unknown: Set<StorePath> = [],
                downloadSize: UInt64 = 0, narSize: UInt64 = 0) {
        self.willBuild = willBuild
        self.willSubstitute = willSubstitute
        self.unknown = unknown
        self.downloadSize = downloadSize
        self.narSize = narSize
    }
}

/// A path to add with its NAR (AddToStoreNar, AddMultipleToStore).
public struct PathWithNAR: Sendable, Hashable {
    public var info: PathInfo
    public var nar: [UInt8]

    public init(info: PathInfo, nar: [UInt8]) {
        self.info = info
        self.nar = nar
    }
}

/// What a substituter could provide for a path (QuerySubstitutablePathInfo(s)).
public struct SubstitutablePathInfo: Sendable, Hashable {
    public var deriver: StorePath?
    public var references: Set<StorePath>
    public var downloadSize: UInt64
    public var narSize: UInt64

    public init(deriver: StorePath? = nil, references: Set<StorePath> = [], downloadSize: UInt64 = 0, narSize: UInt64 = 0) {
        self.deriver = deriver
        self.references = references
        self.downloadSize = downloadSize
        self.narSize = narSize
    }

    func write(to w: inout WireWriter, _ ctx: WireContext) {
        w.writeOptionalStorePath(deriver, ctx)
        w.writeStorePathSet(references, ctx)
        w.writeU64(downloadSize)
        w.writeU64(narSize)
    }

    static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> SubstitutablePathInfo {
        SubstitutablePathInfo(deriver: try r.readOptionalStorePath("deriver", ctx),
                              references: Set(try r.readStorePaths("references", ctx)),
                              downloadSize: try r.readU64("downloadSize"), narSize: try r.readU64("narSize"))
    }
}
