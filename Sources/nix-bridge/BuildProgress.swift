import Bridge
import Foundation
import NixCore

/// `nix-bridge build`'s log (the lines `BuildEvent.logLines` words as Nix does: "building
/// '...' on '...'...", "copying path '...' from '...'...", the builders' own lines) and, on a
/// terminal, Nix's status line:
/// `[1/0/3 built, 2 copied (4.1 MiB), 0.0 MiB DL] building foo on ssh-ng://builder2`.
final class BuildProgress: @unchecked Sendable {
    private let line: StatusLine
    private let lock = NSLock()
    private var expected = 0, running = 0, built = 0
    private var copied = 0
    private var copiedBytes: UInt64 = 0, downloaded: UInt64 = 0
    private var current = ""
    /// What each running build shows, in the order they started (the latest is shown).
    private var activities: [(StorePath, String)] = []
    private let dir: StoreDirectory

    init(line: StatusLine, storeDir: StoreDirectory) {
        self.line = line
        dir = storeDir
    }

    func report(_ event: BuildEvent) {
        for text in event.logLines(storeDir: dir) { line.log(text) }
        switch event {
        case let .planned(build, _):
            lock.withLock { expected = build.count }
        case let .substitute(e):
            substitute(e)
        case let .uploading(_, _, size):
            lock.withLock { copied += 1; copiedBytes += size }
        case let .building(d, machine):
            lock.withLock {
                running += 1
                activities.append((d, "building \(Self.name(d))" + (machine.map { " on \($0)" } ?? "")))
                current = ""
            }
        case let .copyingOutput(_, _, size):
            lock.withLock { copied += 1; copiedBytes += size; downloaded += size }
        case let .built(d, _):
            lock.withLock { running -= 1; built += 1; activities.removeAll { $0.0 == d } }
        case let .failed(f):
            lock.withLock {
                // Only a build that had started was running (not one whose inputs failed).
                if let i = activities.firstIndex(where: { dir.print($0.0) == f.drvPath }) {
                    activities.remove(at: i)
                    running -= 1
                }
            }
        case .fetchFailed, .copyingPaths, .log, .machineDisabled:
            break
        }
        line.update(status)
    }

    /// The status line's part of a substitution event (its log lines come with the build's).
    private func substitute(_ e: Substituter.Event) {
        switch e {
        case let .copying(p, from, _):
            lock.withLock { current = "copying \(Self.name(p)) from \(from)" }
        case let .fetched(_, _, size):
            lock.withLock { copied += 1; copiedBytes += size; downloaded += size; current = "" }
        case .sourceFailed, .untrusted, .storeFailed, .planned, .received:
            break
        }
    }

    var status: String {
        lock.withLock {
            let head = String(format: "[%d/%d/%d built, %d copied (%.1f MiB), %.1f MiB DL]", built, running, expected,
                              copied, Double(copiedBytes) / 1_048_576, Double(downloaded) / 1_048_576)
            let shown = current.isEmpty ? activities.last?.1 ?? "" : current
            return shown.isEmpty ? head : head + " " + shown
        }
    }

    /// `foo` for `/nix/store/<hash>-foo.drv`.
    static func name(_ p: StorePath) -> String {
        let n = p.name
        return n.hasSuffix(".drv") ? String(n.dropLast(4)) : n
    }
}
