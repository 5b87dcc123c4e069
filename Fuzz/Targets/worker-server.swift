import NixCore
import NixWire

/// WorkerServer.receive, a client's bytes split at fuzzer-chosen points: the same actions
/// (writes and streamed data joined) whatever the split, and the same failure.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWorkerServer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let (payload, pieces) = fuzzerSplit(fuzzInput(data, size))
    let streamed = payload.first.map { $0 & 1 == 1 } ?? false
    func run(_ chunks: [ArraySlice<UInt8>]) -> (actions: [WorkerServer.Action], failed: Bool) {
        var server = WorkerServer(info: ClientHandshakeInfo(daemonNixVersion: "fuzz", remoteTrustsUs: .notTrusted),
                                  streamedOps: streamed ? [.addToStoreNar, .addMultipleToStore] : [])
        var actions: [WorkerServer.Action] = []
        for c in chunks {
            do { actions += try server.receive(c) } catch { return (joined(actions), true) }
        }
        return (joined(actions), false)
    }
    let whole = run([payload[...]])
    let split = run(pieces)
    if whole.failed != split.failed { violated("the split changed whether the handshake failed") }
    // A failed handshake ends the connection without a word: its actions do not matter.
    if !whole.failed && whole.actions != split.actions {
        violated("the split changed the actions:\n  whole: \(whole.actions.prefix(8))\n  split: \(split.actions.prefix(8))")
    }
    return 0
}

/// Adjacent writes and adjacent data pieces as one (their cutting follows the input's).
func joined(_ actions: [WorkerServer.Action]) -> [WorkerServer.Action] {
    var out: [WorkerServer.Action] = []
    for a in actions {
        switch (out.last, a) {
        case let (.write(x)?, .write(y)): out[out.count - 1] = .write(x + y)
        case let (.data(x)?, .data(y)): out[out.count - 1] = .data(x + y)
        case (_, .data(let y)) where y.isEmpty: continue
        default: out.append(a)
        }
    }
    return out
}
