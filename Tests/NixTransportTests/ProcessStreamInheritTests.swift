import Foundation
import NixTransport
import Synchronization
import Testing

/// Children started at the same time from several threads must not inherit each other's
/// pipes: a child holding another's stdout open keeps a read of that stdout from ever seeing
/// EOF after the other exits (`nix-bridge build` hung in close that way).
@Suite("ProcessStream descriptors", .timeLimit(.minutes(1)))
struct ProcessStreamInheritTests {
    /// The race is narrow: several rounds make it show in most runs without the fix. (Not
    /// in parallel: each child holds two blocked dispatch threads, and dispatch has ~255.)
    @Test func concurrentSpawnsDoNotInheritEachOthersPipes() async throws {
        for _ in 0..<4 { try await spawnRound(count: 64) }
    }

    private func spawnRound(count: Int) async throws {
        let started = Mutex<[ProcessStream]>([])
        DispatchQueue.concurrentPerform(iterations: count) { _ in
            if let p = try? ProcessStream(["sleep", "60"]) { started.withLock { $0.append(p) } }
        }
        let children = started.withLock { $0 }
        #expect(children.count == count)
        // What each child's stdin, stdout and stderr are ("pipe:[INODE]").
        var own: [String: pid_t] = [:]
        for p in children {
            for fd in 0...2 {
                if let link = Self.link(p.pid, fd) { own[link] = p.pid }
            }
        }
        #expect(own.count == 3 * count)
        var leaks: [String] = []
        for p in children {
            for fd in Self.descriptors(p.pid) where fd > 2 {
                if let link = Self.link(p.pid, fd), let owner = own[link], owner != p.pid {
                    leaks.append("child \(p.pid) holds fd \(fd) = \(link) of child \(owner)")
                }
            }
        }
        for p in children { await p.close() }
        #expect(leaks.isEmpty, "\(leaks.prefix(5))")
        #expect(children.allSatisfy { $0.exitCode == 128 + SIGTERM })
    }

    private static func descriptors(_ pid: pid_t) -> [Int] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { Int($0) }
    }

    private static func link(_ pid: pid_t, _ fd: Int) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")
    }
}
