import NixCore
import NixWire

/// A daemon built from NixWire's server-side pieces (handshake, request decoder, stderr and
/// reply encoders), answering from a script. Used to test the client over every version.
struct FakeDaemon {
    enum Answer {
        case reply(WorkerResponse)
        case error(DaemonError)
    }

    var handshake: ServerHandshake
    var reader = WireReader()
    var context: WireContext?
    var script: [Answer]
    var received: [WorkerRequest] = []

    init(version: WorkerProtocolVersion, script: [Answer], info: ClientHandshakeInfo = ClientHandshakeInfo(daemonNixVersion: "2.99-fake", remoteTrustsUs: .trusted)) {
        handshake = ServerHandshake(ours: version, info: info)
        self.script = script
    }

    /// Logs sent before each reply: one of each kind.
    static func logs(for op: WorkerOp) -> [LogEvent] {
        [.next("working on \(op)\n"),
         .startActivity(id: 7, level: 3, type: 105, text: "building", fields: [.string("x"), .int(42)], parent: 0),
         .result(id: 7, type: 101, fields: [.string("a log line")]),
         .stopActivity(id: 7)]
    }

    mutating func receive(_ bytes: [UInt8]) throws -> [UInt8] {
        reader.feed(bytes)
        var out: [UInt8] = []
        if context == nil {
            for a in try handshake.receive(from: &reader) {
                switch a {
                case let .write(b): out += b
                case let .completed(r): context = WireContext(version: r.version)
                }
            }
            guard context != nil else { return out }
        }
        let ctx = context!
        while let req = try WorkerRequest.read(from: &reader, ctx) {
            received.append(req)
            var w = WireWriter()
            for l in FakeDaemon.logs(for: req.op) { StderrMessage.log(l).write(to: &w, ctx) }
            switch script.removeFirst() {
            case let .error(e):
                StderrMessage.error(e).write(to: &w, ctx)
            case .reply(.narEnd):
                StderrMessage.last.write(to: &w, ctx)
                w.writeRaw(Samples.nar)
            case let .reply(r):
                w.writeRaw(try r.encodedReply(for: req.op, ctx))
            }
            out += w.bytes
        }
        return out
    }
}
