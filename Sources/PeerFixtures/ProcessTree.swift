import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds and signals descendants of a process we started (e.g. the per-connection sshd
/// children of a test sshd), read from /proc. Only ever descendants of a given PID.
public enum ProcessTree {
    /// PIDs whose parent chain reaches `root` (not `root` itself).
    public static func descendants(of root: pid_t) -> [pid_t] {
        var parent: [pid_t: pid_t] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for e in entries {
            guard let pid = pid_t(e),
                  let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = pid_t(fields[1]) { parent[pid] = ppid }
        }
        return parent.keys.filter { pid in
            var p = parent[pid]
            var hops = 0
            while let q = p, hops < 64 {
                if q == root { return true }
                p = parent[q]
                hops += 1
            }
            return false
        }
    }

    /// Whether `pid` runs (a zombie, ended but not yet reaped, counts as ended).
    /// `pid: command line` for messages ("" once it is gone).
    public static func describe(_ pid: pid_t) -> String {
        let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline").map {
            String(decoding: $0.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        } ?? ""
        let parent = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)).flatMap { stat in
            stat.lastIndex(of: ")").map { stat[stat.index(after: $0)...].split(separator: " ").dropFirst().first.map(String.init) ?? "?" }
        } ?? "?"
        return "\(pid) (parent \(parent)): \(cmd)"
    }

    public static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    /// SIGKILLs every descendant of `root`.
    public static func killDescendants(of root: pid_t) {
        for pid in descendants(of: root) { kill(pid, SIGKILL) }
    }
}
