import NixCore
import NixWire
#if canImport(Glibc)
import Glibc
#endif

/// WorkerConnection.receive with fuzzer-chosen requests in flight: after a real handshake
/// (with our own WorkerServer, at a fuzzer-chosen version), the daemon's bytes come from
/// the fuzzer, split at fuzzer-chosen points. The events (writes and NAR data joined) and
/// the failure are the same whatever the split.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWorkerConnection(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard input.count >= 3 else { return 0 }
    let minor = 21 + Int(input[0] % 18)
    let chosen = input[1]
    let (payload, pieces) = fuzzerSplit(Array(input[2...]))
    func run(_ chunks: [ArraySlice<UInt8>]) -> (events: [WorkerConnection.Event], failed: Bool)? {
        guard var conn = connected(minor: minor) else { return nil }
        var events: [WorkerConnection.Event] = []
        for (bit, request) in FuzzRequests.all.enumerated() where chosen & (1 << bit) != 0 {
            guard let (_, bytes) = try? conn.send(request) else { continue }
            if !bytes.isEmpty { events.append(.write(bytes)) }
        }
        for c in chunks {
            do { events += try conn.receive(c) } catch {
                if debugFuzz { debugLine("failed after \(events.count) events at a piece of \(c.count): \(error)") }
                return (joinedEvents(events), true)
            }
        }
        return (joinedEvents(events), false)
    }
    guard let whole = run([payload[...]]), let split = run(pieces) else { return 0 }
    // A failing call loses its own events while NAR data already handed out stays out, so
    // once the stream is found corrupt only the failure itself must agree.
    if whole.failed != split.failed || (!whole.failed && whole.events != split.events) {
        violated("the split changed the events (failed \(whole.failed), \(split.failed)):\n  whole: \(whole.events.prefix(8))\n  split: \(split.events.prefix(8))")
    }
    return 0
}

/// Set by `FUZZ_DEBUG` in the environment: print why a run failed.
let debugFuzz = getenv("FUZZ_DEBUG") != nil

/// Writes a line to stderr (unbuffered: the process may stop right after).
func debugLine(_ s: String) {
    let line = s + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// A connection that finished its handshake with our own server at 1.`minor`.
func connected(minor: Int) -> WorkerConnection? {
    var conn = WorkerConnection(version: WorkerProtocolVersion(minor: minor), narDetector: { NARReaderBoundary() })
    var server = WorkerServer(ours: WorkerProtocolVersion(minor: minor), info: ClientHandshakeInfo(daemonNixVersion: "fuzz"))
    var toServer = conn.start()
    for _ in 0..<8 {
        guard let actions = try? server.receive(toServer) else { return nil }
        toServer = []
        var toClient: [UInt8] = []
        for case let .write(b) in actions { toClient += b }
        guard let events = try? conn.receive(toClient) else { return nil }
        for case let .write(b) in events { toServer += b }
        if conn.negotiatedVersion != nil { return conn }
    }
    return nil
}

enum FuzzRequests {
    static let path = try! StorePath(baseName: "0123456789abcdfghijklmnpqrsvwxyz-fuzz")
    static let all: [WorkerRequest] = [
        .isValidPath(path), .queryPathInfo(path), .narFromPath(path), .queryValidPaths([path], substitute: false),
        .queryAllValidPaths, .queryPathFromHashPart(path.hashPart), .addSignatures(path, ["k:AAAA"]),
        .queryMissing([.opaque(path)]),
    ]
}

func joinedEvents(_ events: [WorkerConnection.Event]) -> [WorkerConnection.Event] {
    var out: [WorkerConnection.Event] = []
    for e in events {
        switch (out.last, e) {
        case let (.write(x)?, .write(y)): out[out.count - 1] = .write(x + y)
        case let (.narData(i, x)?, .narData(j, y)) where i == j: out[out.count - 1] = .narData(i, x + y)
        case (_, .narData(_, let y)) where y.isEmpty: continue
        default: out.append(e)
        }
    }
    return out
}
