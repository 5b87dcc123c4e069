import ArgumentParser
import Bridge
import Foundation
import Glibc
import NixCore

/// `nix-bridge status`: the fleet at a glance; Bridge's `FleetStatus` gathers, this prints.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every machine's state, load and signing keys, and the narinfo cache.",
        discussion: """
            For each configured machine: reachable or not (and why), Nix version, protocol, \
            whether it trusts us, round trip, slots in use / max-jobs (the slot locks shared \
            with 'build'), supported and mandatory features, and the keys that signed its most \
            recent paths, each marked trusted or not by 'trusted-public-keys', and the builds and \
            NARs served from it in the last 24 hours (by any command sharing --state-dir). Then \
            the narinfo cache: rows, size, hit rate (the path lookups of the last 24 hours it \
            answered without asking the builder). With --watch the table \
            is redrawn in place every --interval seconds until interrupted.
            """
    )

    @Flag(help: "Print JSON (see Docs/JSON.md).")
    var json = false
    @Flag(help: "Redraw every --interval seconds until interrupted.")
    var watch = false
    @Option(help: "Seconds between redraws with --watch.")
    var interval: Double = 2
    @OptionGroup var fleet: FleetStatusOptions

    func run() async throws {
        let prober = fleet.prober(try fleet.load())
        let terminal = isatty(1) == 1
        repeat {
            let report = await prober.gather()
            let text = json ? StatusJSON.render(report) + "\n" : StatusText.render(report)
            if watch, terminal {
                // Home and clear, then the table: redrawn in place.
                print("\u{1b}[H\u{1b}[2J" + text, terminator: "")
            } else {
                print(text, terminator: watch && !json ? "\n" : "")
            }
            fflush(nil)
            if watch { try await Task.sleep(for: .milliseconds(Int(max(0.1, interval) * 1000))) }
        } while watch
    }
}

enum StatusText {
    static func render(_ r: FleetStatus.Report) -> String {
        let window = "LAST " + Self.window(r.activityWindow).uppercased()
        var rows = [["MACHINE", "STATE", "NIX", "PROTO", "TRUSTED", "RTT", "SLOTS", "FEATURES", "MANDATORY", window, "SIGNING KEYS"]]
        var notes: [String] = []
        for m in r.machines {
            let p = m.ping
            let rtt = p.roundTripSeconds.map { String(format: "%.2f ms", $0 * 1000) } ?? "-"
            let trusted = p.trusted.map { $0 ? "yes" : "no" } ?? "-"
            let state = m.isReachable ? "up" : m.downSince.map { "down since \(clock($0))" } ?? "down"
            rows.append([m.machine.storeUri, state, p.nixVersion ?? "-", p.protocolVersion ?? "-",
                         trusted, rtt, "\(m.slotsInUse)/\(m.machine.maxJobs)",
                         list(m.machine.supportedFeatures), list(m.machine.mandatoryFeatures), served(m.activity), keys(m)])
            if let e = p.error { notes.append("\(m.machine.storeUri): \(e)" + (p.hint.map { "\n  hint: \($0)" } ?? "")) }
            if let f = p.earlierFailure, m.isReachable {
                notes.append("\(m.machine.storeUri): answers again (it failed at \(clock(f.failedAt)) during \(f.phase))")
            }
            if let until = p.skippedUntil {
                notes.append("\(m.machine.storeUri): other commands skip it until \(clock(until)) (bridge-failed-builder-ttl)")
            }
            if let e = m.sampleError { notes.append("\(m.machine.storeUri): cannot read its recent paths: \(e)") }
            if let recent = m.recent, recent.unsigned > 0 {
                notes.append("\(m.machine.storeUri): \(recent.unsigned) of its \(recent.sampled) most recent paths are unsigned")
            }
        }
        var out = table(rows)
        if let c = r.cache {
            let rate = c.hitRate.map { String(format: "%.0f%%", $0 * 100) } ?? "-"
            out += "\nnarinfo cache \(c.path): \(c.rows) rows (\(c.positive) found, \(c.negative) not found, \(c.expired) expired), "
                + "\(size(c.fileSize)); hit rate \(rate) (\(c.hits) of \(c.hits + c.misses) path lookups "
                + "in the last \(Self.window(r.activityWindow)) answered without asking the builder)\n"
        } else if let e = r.cacheError {
            out += "\nnarinfo cache: \(e)\n"
        }
        if !notes.isEmpty { out += "\n" + notes.joined(separator: "\n") + "\n" }
        return out
    }

    /// "2 builds, 5 NARs (1.2 MiB)".
    static func served(_ a: ActivityCounts) -> String {
        "\(a.builds) build\(a.builds == 1 ? "" : "s"), \(a.substitutions) NAR\(a.substitutions == 1 ? "" : "s")"
            + (a.substitutions > 0 ? " (\(size(a.narBytes)))" : "")
    }

    /// "24 h", "90 s".
    static func window(_ d: Duration?) -> String {
        let s = (d ?? BuilderActivity.defaultWindow).components.seconds
        return s % 3600 == 0 ? "\(s / 3600) h" : "\(s) s"
    }

    static func keys(_ m: MachineStatus) -> String {
        guard let recent = m.recent else { return "-" }
        if recent.keys.isEmpty { return recent.sampled == 0 ? "(no paths)" : "none" }
        return recent.keys.map { "\($0.name) (\($0.trusted ? "trusted" : "NOT trusted"))" }.joined(separator: ", ")
    }

    /// Local time of day, as `HH:MM:SS`.
    static func clock(_ d: Date) -> String {
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss"
        return f.string(from: d)
    }

    static func list(_ s: Set<String>) -> String { s.isEmpty ? "-" : s.sorted().joined(separator: ",") }

    static func size(_ bytes: Int64) -> String {
        bytes < 1 << 20 ? "\(bytes / 1024) KiB" : String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
    }

    /// Columns padded to their widest cell, two spaces apart.
    static func table(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in
                c == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[c] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

enum StatusJSON {
    static func render(_ r: FleetStatus.Report) -> String {
        var o: [String: Any] = [:]
        o["machines"] = r.machines.map { m -> [String: Any] in
            let p = m.ping
            var e: [String: Any] = [
                "storeUri": m.machine.storeUri, "reachable": m.isReachable,
                "systems": m.machine.systemTypes, "maxJobs": Int(m.machine.maxJobs), "slotsInUse": m.slotsInUse,
                "supportedFeatures": m.machine.supportedFeatures.sorted(),
                "mandatoryFeatures": m.machine.mandatoryFeatures.sorted(),
            ]
            if let v = p.nixVersion { e["version"] = v }
            if let v = p.protocolVersion { e["protocol"] = v }
            if let t = p.trusted { e["trusted"] = t }
            if let rtt = p.roundTripSeconds { e["roundTripSeconds"] = rtt }
            if let err = p.error { e["error"] = err }
            if let since = m.downSince { e["downSince"] = PingJSON.timestamp(since) }
            if let f = p.earlierFailure {
                e["earlierFailure"] = ["phase": f.phase, "message": f.message, "failedAt": PingJSON.timestamp(f.failedAt)]
            }
            if let until = p.skippedUntil { e["skippedUntil"] = PingJSON.timestamp(until) }
            if let h = p.hint { e["hint"] = h }
            if let err = m.sampleError { e["recentPathsError"] = err }
            let a = m.activity
            e["activity"] = ["builds": a.builds, "substitutions": a.substitutions, "narBytes": a.narBytes,
                             "cacheHits": a.cacheHits, "cacheMisses": a.cacheMisses]
            if let recent = m.recent {
                e["recentPaths"] = ["sampled": recent.sampled, "inputAddressed": recent.inputAddressed, "unsigned": recent.unsigned]
                e["signingKeys"] = recent.keys.map { ["name": $0.name, "trusted": $0.trusted, "paths": $0.paths] as [String: Any] }
            }
            return e
        }
        if let c = r.cache {
            o["cache"] = ["path": c.path, "fileSize": c.fileSize, "rows": c.rows, "positive": c.positive,
                          "negative": c.negative, "expired": c.expired, "hits": c.hits, "misses": c.misses,
                          "hitRate": c.hitRate ?? NSNull()] as [String: Any]
        }
        o["activityWindowSeconds"] = Int((r.activityWindow ?? BuilderActivity.defaultWindow).components.seconds)
        return JSONOutput.object(o)
    }
}
