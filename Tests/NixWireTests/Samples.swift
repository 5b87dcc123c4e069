import NixCore
import NixWire

/// Sample values for round trips, with only what each protocol version can carry.
enum Samples {
    static let a = try! StorePath(baseName: "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo")
    static let b = try! StorePath(baseName: "n5wkd9frr45pa74if5gpz9j7mifg27fh-bar")
    static let drv = try! StorePath(baseName: "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo.drv")
    static let hash = HashSink.hash(.sha256, Array("nar".utf8))

    static let nar: [UInt8] = {
        var w = WireWriter()
        for s in ["nix-archive-1", "(", "type", "regular", "contents"] { w.writeString(s) }
        w.writeBytes(Array("hello, NAR\n".utf8))
        w.writeString(")")
        return w.bytes
    }()

    static func info(_ v: WorkerProtocolVersion, path: StorePath = a) -> PathInfo {
        var i = PathInfo(path: path, deriver: drv, narHash: hash, references: [a, b], registrationTime: 1_700_000_000,
                         narSize: UInt64(nar.count))
        if v.atLeast(16) {
            i.ultimate = true
            i.sigs = ["cache.example.org-1:AAAA", "other:BBBB"]
            i.ca = .fixed(.recursive, hash)
        }
        return i
    }

    static func buildResult(_ v: WorkerProtocolVersion) -> BuildResult {
        var r = BuildResult(status: .built)
        if v.atLeast(29) {
            r.timesBuilt = 2
            r.startTime = 100
            r.stopTime = 160
        }
        if v.atLeast(37) {
            r.cpuUser = 1_500_000
            r.cpuSystem = 250_000
        }
        if v.has(WorkerProtocolVersion.featureRealisationWithPath) {
            r.builtOutputs = ["out": BuiltOutput(outPath: a, signatures: ["k:sig"])]
        } else if v.atLeast(28) {
            let real = Realisation(id: DrvOutput(drvHash: "sha256:" + Base16.encode(hash.bytes), outputName: "out"),
                                   outPath: a, signatures: ["k:sig"], dependentRealisations: [:])
            r.builtOutputs = ["out": BuiltOutput(outPath: a, signatures: ["k:sig"], realisation: real)]
        }
        return r
    }

    static let failure = BuildResult(status: .permanentFailure, errorMsg: "builder for 'foo.drv' failed with exit code 1")

    static let derivation = BasicDerivation(
        name: "foo", outputs: ["out": .inputAddressed(a), "dev": .caFixed(method: .nar, hash: hash)],
        inputSrcs: [b], system: "x86_64-linux", builder: "/bin/sh", args: ["-c", "echo hi > $out"],
        env: ["out": StoreDirectory.default.print(a), "name": "foo"])

    static var settings: ClientSettings {
        var s = ClientSettings()
        s.keepGoing = true
        s.verbosity = 3
        s.maxBuildJobs = 4
        s.buildCores = 2
        s.verboseBuild = false
        s.overrides = ["substituters": "", "fsync-metadata": "false"]
        return s
    }

    /// Every operation, with a reply, as far as version `v` has it.
    static func exchanges(_ v: WorkerProtocolVersion) -> [(WorkerRequest, WorkerResponse)] {
        let paths: [DerivedPath] = [.opaque(a), .built(drvPath: .opaque(drv), outputs: .names(["out", "dev"]))]
        var list: [(WorkerRequest, WorkerResponse)] = [
            (.setOptions(settings), .done),
            (.isValidPath(a), .valid(true)),
            (.queryValidPaths([a, b], substitute: v.atLeast(27)), .validPaths([a])),
            (.queryAllValidPaths, .validPaths([a, b, drv])),
            (.queryAllValidPaths, .validPaths([])),
            (.queryPathInfo(a), .pathInfo(info(v))),
            (.queryPathInfo(b), .pathInfo(nil)),
            (.queryPathFromHashPart(a.hashPart), .storePath(a)),
            (.queryPathFromHashPart("00000000000000000000000000000000"), .storePath(nil)),
            (.narFromPath(a), .narEnd),
            (.addToStoreNar(PathWithNAR(info: info(WorkerProtocolVersion(minor: 16)), nar: nar),
                            repair: false, dontCheckSigs: true), .done),
            (.buildDerivation(drvPath: drv, derivation, .normal), .buildResult(buildResult(v))),
            (.buildDerivation(drvPath: drv, derivation, .check), .buildResult(failure)),
            (.addSignatures(a, ["k:sig", "j:sig"]), .done),
            (.queryMissing(paths), .missing(MissingInfo(willBuild: [drv], willSubstitute: [a], unknown: [b],
                                                         downloadSize: 1234, narSize: 5678))),
        ]
        if v.atLeast(32) {
            let p = PathWithNAR(info: info(WorkerProtocolVersion(minor: 16)), nar: nar)
            var q = p
            q.info.path = b
            list.append((.addMultipleToStore([p, q], repair: true, dontCheckSigs: false), .done))
        }
        if v.atLeast(34) {
            list.append((.buildPathsWithResults(paths, .repair), .buildResults([
                KeyedBuildResult(path: paths[0], result: BuildResult(status: .alreadyValid)),
                KeyedBuildResult(path: paths[1], result: buildResult(v)),
            ])))
        }
        return list
    }
}
