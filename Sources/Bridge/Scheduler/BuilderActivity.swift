import Foundation
import Glibc
import NixTransport

/// What one store did for us within a window: builds run there, NARs fetched from it, and
/// how often the narinfo cache answered for it.
public struct ActivityCounts: Sendable, Hashable {
    /// Derivations built on it (by `build`).
    public var builds = 0
    /// NARs fetched from it whole and checked (by `substitute`, `build`, `serve`).
    public var substitutions = 0
    /// The bytes of those NARs.
    public var narBytes: Int64 = 0
    /// Paths whose answer for it came from the narinfo cache (found or not), without asking it.
    public var cacheHits = 0
    /// Paths it had to be asked about.
    public var cacheMisses = 0

    public init() {}

    static func + (a: ActivityCounts, b: ActivityCounts) -> ActivityCounts {
        var o = a
        o.builds += b.builds
        o.substitutions += b.substitutions
        o.narBytes += b.narBytes
        o.cacheHits += b.cacheHits
        o.cacheMisses += b.cacheMisses
        return o
    }
}

/// What every command did with each store, kept across processes for `window` (24 h), for
/// `status`. One append-only file per store, `DIR/ESCAPED-URI` (named as the slot locks
/// are), `DIR` being `builder-activity` beside the slot locks' `current-load` (as
/// `FailedBuilders`' directory is). Each event is one line, appended with `O_APPEND` under
/// an exclusive `flock` (so concurrent writers never interleave):
///
/// ```
/// 1764780000 build 1
/// 1764780003 substitution 2 4194304
/// 1764780003 lookup 12 3
/// ```
///
/// (Unix seconds; builds; NARs and their bytes; a lookup's cache hits and misses.) A writer
/// that finds the file over `compactAt` bytes rewrites it in place, under the same lock:
/// the lines still in the window, summed per hour into lines stamped with that hour's last
/// event (so a file stays a few kilobytes, and an hour's events leave the window together
/// with its last one). Lines that do not parse are ignored; errors
/// writing are ignored (only the record is lost, never the operation).
public struct BuilderActivity: Sendable {
    public let directory: String
    public let window: Duration
    private let now: @Sendable () -> Date
    let compactAt: Int

    public static let defaultWindow: Duration = .seconds(24 * 3600)

    public init(directory: String, window: Duration = BuilderActivity.defaultWindow, compactAt: Int = 256 << 10,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.directory = directory
        self.window = window
        self.compactAt = compactAt
        self.now = now
    }

    /// `builder-activity` beside a slot lock directory.
    public static func directory(besideSlotLocks slots: String) -> String {
        (slots as NSString).deletingLastPathComponent + "/builder-activity"
    }

    public func recordBuild(_ store: String) { append(store, ["build 1"]) }

    public func recordSubstitution(_ store: String, narSize: UInt64) { recordSubstitutions(store, narSizes: [narSize]) }

    /// Several NARs fetched from `store`, in one write.
    public func recordSubstitutions(_ store: String, narSizes: [UInt64]) {
        guard !narSizes.isEmpty else { return }
        append(store, ["substitution \(narSizes.count) \(narSizes.reduce(0, +))"])
    }

    /// A lookup asked about `hits + misses` paths of `store`; `hits` were answered from the cache.
    public func recordLookup(_ store: String, hits: Int, misses: Int) {
        guard hits + misses > 0 else { return }
        append(store, ["lookup \(hits) \(misses)"])
    }

    /// `store`'s counts within the window.
    public func counts(_ store: String) -> ActivityCounts {
        guard let data = FileManager.default.contents(atPath: path(store)) else { return ActivityCounts() }
        return Self.parse(String(decoding: data, as: UTF8.self), since: cutoff())
    }

    /// Every recorded store's counts, summed (the narinfo cache's hit rate across the fleet).
    public func total() -> ActivityCounts {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let since = cutoff()
        return names.filter { !$0.hasPrefix(".") }.reduce(ActivityCounts()) { sum, name in
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { return sum }
            return sum + Self.parse(String(decoding: data, as: UTF8.self), since: since)
        }
    }

    func cutoff() -> Int64 { Int64(now().timeIntervalSince1970) - window.components.seconds }

    func path(_ store: String) -> String { directory + "/" + LockFiles.escapeUri(store) }

    static func parse(_ text: String, since: Int64) -> ActivityCounts {
        buckets(text, since: since, hour: false).values.reduce(ActivityCounts()) { $0 + $1.counts }
    }

    /// The lines at or after `since`, summed per second (or per hour).
    static func buckets(_ text: String, since: Int64, hour: Bool) -> [Int64: (last: Int64, counts: ActivityCounts)] {
        var out: [Int64: (last: Int64, counts: ActivityCounts)] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 3, let t = Int64(f[0]), t >= since, let n = Int(f[2]) else { continue }
            var c = ActivityCounts()
            switch (f[1], f.count) {
            case ("build", 3): c.builds = n
            case ("substitution", 4):
                guard let bytes = Int64(f[3]) else { continue }
                c.substitutions = n
                c.narBytes = bytes
            case ("lookup", 4):
                guard let misses = Int(f[3]) else { continue }
                c.cacheHits = n
                c.cacheMisses = misses
            default: continue
            }
            let key = hour ? t / 3600 : t
            let old = out[key] ?? (last: t, counts: ActivityCounts())
            out[key] = (last: max(old.last, t), counts: old.counts + c)
        }
        return out
    }

    /// The lines of `buckets`, oldest first.
    static func lines(_ buckets: [Int64: (last: Int64, counts: ActivityCounts)]) -> String {
        var out = ""
        for (_, b) in buckets.sorted(by: { $0.key < $1.key }) {
            let c = b.counts
            if c.builds > 0 { out += "\(b.last) build \(c.builds)\n" }
            if c.substitutions > 0 { out += "\(b.last) substitution \(c.substitutions) \(c.narBytes)\n" }
            if c.cacheHits + c.cacheMisses > 0 { out += "\(b.last) lookup \(c.cacheHits) \(c.cacheMisses)\n" }
        }
        return out
    }

    private func append(_ store: String, _ events: [String]) {
        guard !events.isEmpty else { return }
        let t = Int64(now().timeIntervalSince1970)
        let line = Array(events.map { "\(t) \($0)\n" }.joined().utf8)
        let file = path(store)
        var fd = Glibc.open(file, O_CLOEXEC | O_WRONLY | O_APPEND | O_CREAT, 0o644)
        if fd < 0 {
            LockFiles.makeDirectory(directory)
            fd = Glibc.open(file, O_CLOEXEC | O_WRONLY | O_APPEND | O_CREAT, 0o644)
            guard fd >= 0 else { return }
        }
        defer { _ = Glibc.close(fd) }
        guard system_flock(fd, LOCK_EX) == 0 else { return }
        var st = stat()
        if fstat(fd, &st) == 0, Int(st.st_size) > compactAt { compact(file, fd) }
        _ = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    /// Rewrites the file (locked by us through `fd`): the window's lines, summed per hour.
    private func compact(_ file: String, _ fd: Int32) {
        guard let data = FileManager.default.contents(atPath: file) else { return }
        let text = Array(Self.lines(Self.buckets(String(decoding: data, as: UTF8.self), since: cutoff(), hour: true)).utf8)
        guard ftruncate(fd, 0) == 0 else { return }
        // O_APPEND: this lands at the new end, 0.
        _ = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}
