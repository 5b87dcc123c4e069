import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// SIGINT, SIGTERM and SIGHUP for a command that cleans up when interrupted, as Nix's signal
/// thread treats them: the first calls `interrupted` (the command cancels its work: its
/// connections closed, its children ended and reaped); a second ends the process at once
/// by that signal's default action.
package final class InterruptSignals: Sendable {
    package static let numbers = [SIGINT, SIGTERM, SIGHUP]
    private let sources: [DispatchSourceBox]
    private let received = SignalCount()

    package init(_ interrupted: @escaping @Sendable (Int32) -> Void) {
        var boxes: [DispatchSourceBox] = []
        let received = self.received
        for number in Self.numbers {
            system_ignore(number)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            boxes.append(DispatchSourceBox(source))
            // `data`: how many came since the handler last ran (Dispatch coalesces them).
            source.setEventHandler {
                let n = max(1, Int(source.data))
                if received.add(n) + n > 1 { system_dieBy(number) }
                interrupted(number)
            }
            source.resume()
        }
        sources = boxes
    }

    /// Whether a signal has come.
    package var wasInterrupted: Bool { received.value > 0 }
}

private final class SignalCount: Sendable {
    private let count = Mutex(0)
    /// Counts `n` more signals; returns how many had come before.
    func add(_ n: Int) -> Int { count.withLock { c in defer { c += n }; return c } }
    var value: Int { count.withLock { $0 } }
}

/// A signal source held for the life of its `InterruptSignals` (the sources are only
/// touched on creation).
private struct DispatchSourceBox: @unchecked Sendable {
    let source: any DispatchSourceSignal
    init(_ source: any DispatchSourceSignal) { self.source = source }
}
