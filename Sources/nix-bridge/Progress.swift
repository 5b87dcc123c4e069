import Foundation
import Glibc

/// Progress on stderr the way Nix shows it: log lines (e.g. `copying path '...' from '...'...`)
/// always, in pipes too; on a terminal also one status line redrawn in place below them.
final class StatusLine: @unchecked Sendable {
    let isTerminal: Bool
    private let lock = NSLock()
    private var status = ""
    private let width: Int

    init(isTerminal: Bool = isatty(2) != 0) {
        self.isTerminal = isTerminal
        width = Self.terminalWidth() ?? Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 80
    }

    /// The width of the terminal on stderr: a status line longer than that would wrap and
    /// could no longer be redrawn in place.
    static func terminalWidth() -> Int? {
        var size = winsize()
        guard ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 10 else { return nil }
        return Int(size.ws_col)
    }

    /// Prints a log line above the status line.
    func log(_ line: String) {
        lock.withLock {
            write(clearing + line + "\n" + drawn)
        }
    }

    /// Replaces the status line (terminal only).
    func update(_ text: String) {
        guard isTerminal else { return }
        lock.withLock {
            status = String(text.prefix(max(width, 11) - 1))
            write(clearing + drawn)
        }
    }

    /// Removes the status line.
    func finish() {
        guard isTerminal else { return }
        lock.withLock {
            write(clearing)
            status = ""
        }
    }

    private var clearing: String { isTerminal && !status.isEmpty ? "\r\u{1b}[K" : "" }
    private var drawn: String { isTerminal ? status : "" }

    private func write(_ s: String) {
        guard !s.isEmpty else { return }
        FileHandle.standardError.write(Data(s.utf8))
    }
}

/// What `nix-bridge substitute` has done so far, as Nix's progress bar words it:
/// `[2/5 paths, 3.1/12.0 MiB] copying '...' from 'ssh-ng://builder1'`.
final class SubstituteProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var totalPaths = 0, donePaths = 0
    private var totalBytes: UInt64 = 0, doneBytes: UInt64 = 0, currentBytes: UInt64 = 0
    private var current = ""

    func planned(paths: Int, bytes: UInt64) {
        lock.withLock { totalPaths = paths; totalBytes = bytes }
    }

    func copying(_ path: String, from: String) {
        lock.withLock { current = "copying '\(path)' from '\(from)'"; currentBytes = 0 }
    }

    func received(_ bytes: UInt64) { lock.withLock { currentBytes = bytes } }

    func fetched(narSize: UInt64) {
        lock.withLock {
            donePaths += 1
            doneBytes += narSize
            currentBytes = 0
            current = ""
        }
    }

    var text: String {
        lock.withLock {
            let head = String(format: "[%d/%d paths, %.1f/%.1f MiB]", donePaths, totalPaths,
                              Self.mib(doneBytes + currentBytes), Self.mib(totalBytes))
            return current.isEmpty ? head : head + " " + current
        }
    }

    static func mib(_ bytes: UInt64) -> Double { Double(bytes) / 1_048_576 }
}
