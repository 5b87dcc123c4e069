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
            source.setEventHandler {
                if received.add() > 1 { system_dieBy(number) }
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
    /// Counts one more signal; returns how many have come.
    func add() -> Int { count.withLock { n in n += 1; return n } }
    var value: Int { count.withLock { $0 } }
}

/// A signal source held for the life of its `InterruptSignals` (the sources are only
/// touched on creation).
private struct DispatchSourceBox: @unchecked Sendable {
    let source: any DispatchSourceSignal
    init(_ source: any DispatchSourceSignal) { self.source = source }
}
