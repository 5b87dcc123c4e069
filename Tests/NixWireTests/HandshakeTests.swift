import NixCore
@testable import NixWire
import Testing

struct HandshakeTests {
    /// Runs both state machines against each other; returns both results.
    static func run(client ours: WorkerProtocolVersion, server theirs: WorkerProtocolVersion,
                    info: ClientHandshakeInfo = ClientHandshakeInfo(daemonNixVersion: "2.8.0", remoteTrustsUs: .notTrusted))
        throws -> (client: HandshakeResult?, server: HandshakeResult?)
    {
        var client = ClientHandshake(ours: ours)
        var server = ServerHandshake(ours: theirs, info: info)
        var cr = WireReader(), sr = WireReader()
        var cres: HandshakeResult?, sres: HandshakeResult?
        sr.feed(client.start())
        for _ in 0..<10 {
            var toClient: [UInt8] = []
            for a in try server.receive(from: &sr) {
                switch a {
                case let .write(b): toClient += b
                case let .completed(r): sres = r
                }
            }
            cr.feed(toClient)
            for a in try client.receive(from: &cr) {
                switch a {
                case let .write(b): sr.feed(b)
                case let .completed(r): cres = r
                case .log: break
                }
            }
            if cres != nil && sres != nil { break }
        }
        return (cres, sres)
    }

    @Test(arguments: [(21, 38), (38, 21), (34, 34), (35, 38), (38, 34), (37, 37), (38, 38)])
    func negotiatesTheMinimum(client: Int, server: Int) throws {
        let (c, s) = try Self.run(client: WorkerProtocolVersion(minor: client), server: WorkerProtocolVersion(minor: server))
        let both = min(client, server)
        #expect(c?.version.minor == both)
        #expect(s?.version.minor == both)
        #expect(c?.peerVersion.minor == server)
        #expect(s?.peerVersion.minor == client)
        #expect(c?.info.daemonNixVersion == (both >= 33 ? "2.8.0" : nil))
        #expect(c?.info.remoteTrustsUs == (both >= 35 ? .notTrusted : nil))
    }

    /// 1.38 exchanges feature sets; both sides keep the intersection (as upstream's
    /// handshake_features test: {bar, aap, mies, xyzzy} and {foo, bar, xyzzy} give {bar, xyzzy}).
    @Test func featuresAreIntersected() throws {
        let (c, s) = try Self.run(client: WorkerProtocolVersion(minor: 38, features: ["bar", "aap", "mies", "xyzzy"]),
                                  server: WorkerProtocolVersion(minor: 38, features: ["foo", "bar", "xyzzy"]))
        #expect(c?.version == WorkerProtocolVersion(minor: 38, features: ["bar", "xyzzy"]))
        #expect(s?.version == c?.version)
        #expect(c?.peerVersion.features == ["foo", "bar", "xyzzy"])
    }

    @Test func refusesOldPeers() throws {
        #expect(throws: WireError.unsupportedVersion(peer: "1.20", negotiated: "1.20", minimum: "1.21")) {
            try Self.run(client: .latest, server: WorkerProtocolVersion(minor: 20))
        }
        #expect(throws: WireError.unsupportedVersion(peer: "1.38", negotiated: "1.20", minimum: "1.21")) {
            try Self.run(client: WorkerProtocolVersion(minor: 20), server: .latest)
        }
    }

    /// The client opens with MAGIC_1 alone; the server answers it before any version arrives
    /// (Nix 2.8 and Lix wait for that answer).
    @Test func serverAnswersMagicAlone() throws {
        var client = ClientHandshake()
        let hello = client.start()
        #expect(hello == [0x63, 0x78, 0x69, 0x6e, 0, 0, 0, 0])
        var server = ServerHandshake(ours: .nix28, info: ClientHandshakeInfo(daemonNixVersion: "2.8.0"))
        var r = WireReader(hello)
        var expected = WireWriter()
        expected.writeU64(WorkerMagic.server)
        expected.writeU64(0x122)
        #expect(try server.receive(from: &r) == [.write(expected.bytes)])
    }

    /// Nix 2.8's exact bytes (see the notes on the real peer) give 1.34 with "2.8.0".
    @Test func nix28Bytes() throws {
        var client = ClientHandshake()
        _ = client.start()
        var w = WireWriter()
        w.writeU64(0x6478696f)
        w.writeU64(0x122)
        var r = WireReader()
        r.feed(w.bytes)
        var reply = WireWriter()
        reply.writeU64(WorkerProtocolVersion.latest.wire)  // we send our own version
        reply.writeU64(0)
        reply.writeU64(0)
        #expect(try client.receive(from: &r) == [.write(reply.bytes)])
        var rest = WireWriter()
        rest.writeString("2.8.0")
        rest.writeU64(StderrTag.next)
        rest.writeString("hello\n")
        rest.writeU64(StderrTag.last)
        // Byte by byte: nothing is lost or consumed early.
        var actions: [ClientHandshake.Action] = []
        for b in rest.bytes {
            r.feed([b])
            actions += try client.receive(from: &r)
        }
        #expect(actions == [.log(.next("hello\n")),
                            .completed(HandshakeResult(version: .nix28, peerVersion: .nix28, info: ClientHandshakeInfo(daemonNixVersion: "2.8.0")))])
        #expect(client.isDone)
    }

    @Test func badMagicAndDaemonErrors() throws {
        var client = ClientHandshake()
        _ = client.start()
        var r = WireReader([1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(throws: WireError.badMagic(expected: WorkerMagic.server, got: 0x0807060504030201)) { try client.receive(from: &r) }

        var server = ServerHandshake(info: ClientHandshakeInfo())
        var sr = WireReader([0x78, 0, 0, 0, 0, 0, 0, 0])
        #expect(throws: WireError.self) { try server.receive(from: &sr) }

        // An error during the initial stderr messages is the daemon's, typed.
        var c2 = ClientHandshake(ours: WorkerProtocolVersion(minor: 30))
        _ = c2.start()
        var w = WireWriter()
        w.writeU64(WorkerMagic.server)
        w.writeU64(0x11e)
        StderrMessage.error(DaemonError(message: "no", traces: [])).write(to: &w, WireContext(version: WorkerProtocolVersion(minor: 30)))
        var r2 = WireReader(w.bytes)
        #expect(throws: WireError.daemon(DaemonError(message: "no", level: 0, traces: []))) { try c2.receive(from: &r2) }
    }
}
