import Foundation
import NixCore
import NixWire
import TestSupport

/// Runs a WorkerConnection against a real daemon process: writes what the connection asks
/// to, feeds what the daemon sends, and collects events per request.
struct DaemonDriver {
    struct Closed: Error, CustomStringConvertible {
        var reason: WireError?
        var stderr: String
        var description: String { "the daemon closed the connection (\(reason.map(String.init(describing:)) ?? "nothing pending")): \(stderr)" }
    }

    /// What came back for one request.
    struct Outcome {
        var response: WorkerResponse?
        var failure: DaemonError?
        var logs: [LogEvent] = []
        var nar: [UInt8] = []
    }

    let daemon: DaemonProcess
    var connection: WorkerConnection
    var outcomes: [WorkerConnection.RequestID: Outcome] = [:]
    var handshake: HandshakeResult?
    /// How many bytes to hand the connection at a time (1 to test byte-by-byte feeding).
    var feedSize = Int.max

    init(daemon: DaemonProcess, version: WorkerProtocolVersion = .latest) {
        self.daemon = daemon
        self.connection = WorkerConnection(version: version, narDetector: { TestNARDetector() })
    }

    mutating func start() throws -> HandshakeResult {
        daemon.write(connection.start())
        try pump { $0.handshake != nil }
        return handshake!
    }

    mutating func send(_ request: WorkerRequest) throws -> WorkerConnection.RequestID {
        let (id, bytes) = try connection.send(request)
        outcomes[id] = Outcome()
        daemon.write(bytes)
        return id
    }

    /// Waits until every request sent so far has its answer.
    mutating func settle() throws {
        try pump { $0.connection.inFlight == 0 }
    }

    private mutating func pump(until done: (DaemonDriver) -> Bool) throws {
        while !done(self) {
            let bytes = daemon.read()
            if bytes.isEmpty { throw Closed(reason: connection.closedError(), stderr: daemon.finish()) }
            var i = 0
            // Stop once done: after a mid-NAR error the rest is the daemon's goodbye.
            while i < bytes.count && !done(self) {
                let end = min(bytes.count, i + min(feedSize, bytes.count))
                for e in try connection.receive(bytes[i..<end]) { handle(e) }
                i = end
            }
        }
    }

    private mutating func handle(_ e: WorkerConnection.Event) {
        switch e {
        case let .write(b): daemon.write(b)
        case let .handshakeCompleted(h): handshake = h
        case let .log(id?, l): outcomes[id]?.logs.append(l)
        case .log(nil, _): break
        case let .narData(id, b): outcomes[id]?.nar.append(contentsOf: b)
        case let .response(id, r): outcomes[id]?.response = r
        case let .failure(id, f): outcomes[id]?.failure = f
        }
    }
}
