import Foundation
import NixCore
import NixWire
import Testing
import TestSupport

/// The client state machine against the real `nix-daemon --stdio` (Nix 2.8, protocol 1.34)
/// on a chroot store, checked against what the nix CLI says about the same store.
@Suite(.tags(.realNix), .enabled(if: DaemonProcess.isAvailable, "needs the nix CLI and nix-daemon (nix-bin)"))
struct RealDaemonTests {
    /// A chroot store holding one added file, and the CLI's view of it.
    struct Fixture {
        let root: URL
        let store: String
        let path: StorePath
        let pathInfo: [String: Any]
        let nar: [UInt8]

        init() throws {
            root = try TestSupport.temporaryDirectory("nixwire-daemon")
            store = "local?root=" + root.appendingPathComponent("chroot").path
            let file = root.appendingPathComponent("hello.txt")
            try Data("hello from NixWire \(UUID())\n".utf8).write(to: file)
            let added = try TestSupport.run(["nix-store", "--store", store, "--add", file.path]).trimmed
            path = try StoreDirectory.default.parse(added)
            let json = try TestSupport.nix(["path-info", "--json", "--store", store, added]).stdout
            pathInfo = try #require((try JSONSerialization.jsonObject(with: json) as? [[String: Any]])?.first)
            nar = [UInt8](try TestSupport.nix(["store", "dump-path", "--store", store, added]).stdout)
        }
    }

    static let missing = try! StorePath(baseName: "00000000000000000000000000000000-missing")

    @Test func handshakeNegotiatesTheDaemonsVersion() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let daemon = try DaemonProcess(root: f.root.appendingPathComponent("chroot"))
        var d = DaemonDriver(daemon: daemon)
        let h = try d.start()
        let nixVersion = try TestSupport.run(["nix", "--version"]).trimmed.split(separator: " ").last.map(String.init)
        #expect(h.peerVersion.minor == 34)
        #expect(h.version == WorkerProtocolVersion(minor: 34))
        #expect(h.info.daemonNixVersion == nixVersion)
        #expect(h.info.remoteTrustsUs == nil)
        daemon.finish()
    }

    /// Many requests written at once, answered in order; a daemon error for one of them does
    /// not disturb the others.
    @Test(arguments: [Int.max, 1])
    func pipelinedQueries(feedSize: Int) throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let daemon = try DaemonProcess(root: f.root.appendingPathComponent("chroot"))
        var d = DaemonDriver(daemon: daemon)
        d.feedSize = feedSize
        _ = try d.start()

        let validMissing = try d.send(.isValidPath(Self.missing))
        let validPresent = try d.send(.isValidPath(f.path))
        let info = try d.send(.queryPathInfo(f.path))
        let infoMissing = try d.send(.queryPathInfo(Self.missing))
        let validPaths = try d.send(.queryValidPaths([f.path, Self.missing], substitute: false))
        let fromHash = try d.send(.queryPathFromHashPart(f.path.hashPart))
        let nar = try d.send(.narFromPath(f.path))
        // An unsigned input-addressed path: Nix refuses it, drains the frames and goes on.
        // (AddSignatures on a missing path would crash Nix 2.8's daemon: null info.)
        let unsigned = PathInfo(path: Self.missing, narHash: HashSink.hash(.sha256, f.nar), narSize: UInt64(f.nar.count))
        let badSigs = try d.send(.addToStoreNar(PathWithNAR(info: unsigned, nar: f.nar), repair: false, dontCheckSigs: false))
        let after = try d.send(.isValidPath(f.path))
        #expect(d.connection.inFlight == 9)
        try d.settle()

        #expect(d.outcomes[validMissing]?.response == .valid(false))
        #expect(d.outcomes[validPresent]?.response == .valid(true))
        #expect(d.outcomes[infoMissing]?.response == .pathInfo(nil))
        #expect(d.outcomes[validPaths]?.response == .validPaths([f.path]))
        #expect(d.outcomes[fromHash]?.response == .storePath(f.path))
        #expect(d.outcomes[after]?.response == .valid(true))

        // QueryPathInfo agrees with `nix path-info --json`.
        guard case let .pathInfo(got?)? = d.outcomes[info]?.response else {
            Issue.record("no path info: \(String(describing: d.outcomes[info]))")
            return
        }
        #expect(got.narHash == (try Hash(parsing: try #require(f.pathInfo["narHash"] as? String))))
        #expect(got.narSize == (f.pathInfo["narSize"] as? NSNumber)?.uint64Value)
        #expect(got.registrationTime == (f.pathInfo["registrationTime"] as? NSNumber)?.int64Value)
        #expect(got.references.map { StoreDirectory.default.print($0) }.sorted() == (f.pathInfo["references"] as? [String])?.sorted())
        #expect(got.ca?.description == f.pathInfo["ca"] as? String)
        #expect(got.deriver == nil)

        // NarFromPath gives exactly `nix store dump-path`'s bytes, whose hash is narHash.
        #expect(d.outcomes[nar]?.response == .narEnd)
        #expect(d.outcomes[nar]?.nar == f.nar)
        #expect(HashSink.hash(.sha256, f.nar) == got.narHash)

        // The daemon's error is typed, with its message (colours stripped for display).
        let err = try #require(d.outcomes[badSigs]?.failure)
        #expect(err.displayMessage.contains(StoreDirectory.default.print(Self.missing)))
        #expect(err.displayMessage.contains("lacks a valid signature"), "\(err)")
        #expect(err.message.contains("\u{1b}["), "Nix 2.8 colours the path in its messages")
        #expect(!err.displayMessage.contains("\u{1b}"))
        #expect(d.outcomes[badSigs]?.response == nil)
        daemon.finish()
    }

    /// SetOptions, then AddToStoreNar with a NAR made by the CLI: the daemon accepts it and
    /// reports the path valid with our info. At each version we speak: framed from 1.23,
    /// pulled by the daemon with STDERR_READ before.
    @Test(arguments: [21, 22, 23, 27, 30, 34])
    func addToStoreNarThenQuery(minor: Int) throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        // A second store receives the path through our client.
        let target = f.root.appendingPathComponent("target")
        let daemon = try DaemonProcess(root: target)
        var d = DaemonDriver(daemon: daemon, version: WorkerProtocolVersion(minor: minor))
        #expect(try d.start().version.minor == minor)
        var settings = ClientSettings()
        settings.overrides = ["fsync-metadata": "false"]
        let opts = try d.send(.setOptions(settings))
        let narHash = try Hash(parsing: try #require(f.pathInfo["narHash"] as? String))
        let ca = try ContentAddress(parsing: try #require(f.pathInfo["ca"] as? String))
        let info = PathInfo(path: f.path, narHash: narHash, narSize: UInt64(f.nar.count), ca: ca)
        let add = try d.send(.addToStoreNar(PathWithNAR(info: info, nar: f.nar), repair: false, dontCheckSigs: false))
        let query = try d.send(.queryPathInfo(f.path))
        let valid = try d.send(.queryValidPaths([f.path, Self.missing], substitute: false))
        let nar = try d.send(.narFromPath(f.path))
        try d.settle()
        #expect(d.outcomes[valid]?.response == .validPaths([f.path]))
        #expect(d.outcomes[nar]?.nar == f.nar)
        #expect(d.outcomes[opts]?.response == .done)
        #expect(d.outcomes[add]?.response == .done, "\(String(describing: d.outcomes[add]?.failure))")
        guard case let .pathInfo(got?)? = d.outcomes[query]?.response else {
            Issue.record("path not added: \(String(describing: d.outcomes[query]))")
            return
        }
        #expect(got.narHash == narHash)
        #expect(got.ca == ca)
        daemon.finish()
        // And the CLI sees it in the target store.
        let listed = try TestSupport.run(["nix-store", "--store", "local?root=" + target.path, "--verify-path",
                                          StoreDirectory.default.print(f.path)], check: false)
        #expect(listed.status == 0, "\(listed.stderr)")
    }

    /// Nix 2.8 starts a NAR for a path it does not have, then sends STDERR_ERROR inside it;
    /// the connection reports that error, typed, for the request.
    @Test(arguments: [Int.max, 1])
    func narFromPathOfMissingPath(feedSize: Int) throws {
        let root = try TestSupport.temporaryDirectory("nixwire-daemon")
        defer { try? FileManager.default.removeItem(at: root) }
        let daemon = try DaemonProcess(root: root)
        var d = DaemonDriver(daemon: daemon)
        d.feedSize = feedSize
        _ = try d.start()
        let id = try d.send(.narFromPath(Self.missing))
        try d.settle()
        let err = try #require(d.outcomes[id]?.failure)
        #expect(err.displayMessage.contains(StoreDirectory.default.print(Self.missing)))
        #expect(err.displayMessage.contains("No such file or directory"), "\(err)")
        daemon.finish()
    }

    /// Pipelining against the real daemon: N QueryPathInfo requests written at once versus one
    /// at a time. Prints both timings (not compared: other tests share the cores); asserts
    /// every answer.
    @Test func pipeliningIsFasterThanRoundTrips() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let n = 2000
        let clock = ContinuousClock()
        var timings: [String: Duration] = [:]
        for mode in ["sequential", "pipelined"] {
            let daemon = try DaemonProcess(root: f.root.appendingPathComponent("chroot"))
            var d = DaemonDriver(daemon: daemon)
            _ = try d.start()
            var ids: [WorkerConnection.RequestID] = []
            let t = try clock.measure {
                for _ in 0..<n {
                    ids.append(try d.send(.queryPathInfo(f.path)))
                    if mode == "sequential" { try d.settle() }
                }
                try d.settle()
            }
            timings[mode] = t
            #expect(ids.count == n)
            #expect(ids.allSatisfy {
                if case .pathInfo(let i?)? = d.outcomes[$0]?.response { return i.narSize == UInt64(f.nar.count) }
                return false
            })
            daemon.finish()
        }
        print("NixWire real-daemon QueryPathInfo x\(n): sequential \(timings["sequential"]!), pipelined \(timings["pipelined"]!)")
    }

    /// AddMultipleToStore (1.32+) into an empty store, then AddSignatures on the new path:
    /// QueryPathInfo and the CLI show the result.
    @Test func addMultipleThenSign() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let target = f.root.appendingPathComponent("multi")
        let daemon = try DaemonProcess(root: target)
        var d = DaemonDriver(daemon: daemon)
        _ = try d.start()
        let narHash = try Hash(parsing: try #require(f.pathInfo["narHash"] as? String))
        let ca = try ContentAddress(parsing: try #require(f.pathInfo["ca"] as? String))
        let info = PathInfo(path: f.path, narHash: narHash, narSize: UInt64(f.nar.count), ca: ca)
        let add = try d.send(.addMultipleToStore([PathWithNAR(info: info, nar: f.nar)], repair: false, dontCheckSigs: false))
        let sig = "nixwire-test-1:" + String(repeating: "A", count: 86) + "=="
        let sign = try d.send(.addSignatures(f.path, [sig]))
        let query = try d.send(.queryPathInfo(f.path))
        try d.settle()
        daemon.finish()
        #expect(d.outcomes[add]?.response == .done, "\(String(describing: d.outcomes[add]?.failure))")
        #expect(d.outcomes[sign]?.response == .done, "\(String(describing: d.outcomes[sign]?.failure))")
        guard case let .pathInfo(got?)? = d.outcomes[query]?.response else {
            Issue.record("path not added: \(String(describing: d.outcomes[query]))")
            return
        }
        #expect(got.narHash == narHash)
        #expect(got.sigs == [sig])
        let json = try TestSupport.nix(["path-info", "--json", "--store", "local?root=" + target.path, StoreDirectory.default.print(f.path)]).stdout
        let cli = try #require((try JSONSerialization.jsonObject(with: json) as? [[String: Any]])?.first)
        #expect(cli["signatures"] as? [String] == [sig])
    }

    /// A 64 MiB NAR streamed through NarFromPath: its hash matches the daemon's narHash.
    /// Prints the time taken.
    @Test func largeNarFromPath() throws {
        let root = try TestSupport.temporaryDirectory("nixwire-bignar")
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("big.bin")
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        try random.readData(ofLength: 64 << 20).write(to: file)
        try random.close()
        let chroot = root.appendingPathComponent("chroot")
        let added = try TestSupport.run(["nix-store", "--store", "local?root=" + chroot.path, "--add", file.path]).trimmed
        let path = try StoreDirectory.default.parse(added)
        let daemon = try DaemonProcess(root: chroot)
        var d = DaemonDriver(daemon: daemon)
        _ = try d.start()
        let info = try d.send(.queryPathInfo(path))
        try d.settle()
        guard case let .pathInfo(i?)? = d.outcomes[info]?.response else {
            Issue.record("no info")
            return
        }
        let clock = ContinuousClock()
        var nar = WorkerConnection.RequestID?.none
        let t = try clock.measure {
            nar = try d.send(.narFromPath(path))
            try d.settle()
        }
        daemon.finish()
        let bytes = try #require(d.outcomes[nar!]?.nar)
        #expect(UInt64(bytes.count) == i.narSize)
        #expect(HashSink.hash(.sha256, bytes) == i.narHash)
        let mib = Double(bytes.count) / 1_048_576
        print("NixWire real-daemon NarFromPath \(Int(mib)) MiB: \(t) (\(Int(mib / (Double(t.components.attoseconds) / 1e18 + Double(t.components.seconds)))) MiB/s)")
    }
}
