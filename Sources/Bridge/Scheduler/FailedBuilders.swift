import Foundation
import Glibc

/// A builder that could not be reached in time, as remembered on disk.
public struct BuilderFailure: Sendable, Hashable {
    /// The store URI, as configured (`ssh-ng://builder2`).
    public var store: String
    /// What was being done when it failed ("SSH handshake", "worker handshake", "QueryPathInfo").
    public var phase: String
    /// The error, as the failing command printed it.
    public var message: String
    public var failedAt: Date
    /// Until then, commands skip the builder (and say so); from then on it is asked again.
    public var retryAt: Date

    public init(store: String, phase: String, message: String, failedAt: Date, retryAt: Date) {
        self.store = store
        self.phase = phase
        self.message = message
        self.failedAt = failedAt
        self.retryAt = retryAt
    }

    /// "failed 12 s ago (...); tried again in 48 s", for ping, explain and status.
    public func summary(now: Date = Date()) -> String {
        let ago = max(0, Int(now.timeIntervalSince(failedAt).rounded()))
        let left = max(0, Int(retryAt.timeIntervalSince(now).rounded(.up)))
        return "failed \(ago) s ago during \(phase) (\(message)); tried again in \(left) s"
    }
}

/// Builders that failed in a way that costs time (a timeout, a stalled or dead connection),
/// remembered across processes for `bridge-failed-builder-ttl` seconds (default 60), so the
/// next commands do not wait on them again.
///
/// Each failure is one small file `DIR/ESCAPED-URI` (the store URI with `/` as `_`, as the
/// slot locks name it), written whole under a temporary name and renamed into place, so
/// readers never see half a record and concurrent writers simply replace each other. `DIR`
/// is `failed-builders` beside the slot locks' `current-load` directory. A file holds
/// `key: value` lines:
///
/// ```
/// store: ssh-ng://builder2
/// phase: worker handshake
/// failed-at: 1764780000
/// retry-at: 1764780060
/// message: builder 'ssh-ng://builder2': timed out after 15 s during worker handshake
/// ```
///
/// Times are Unix seconds. Expired files are ignored (and removed when next written or
/// forgotten); a file that does not parse is ignored.
public struct FailedBuilders: Sendable {
    public let directory: String
    /// How long a failure is remembered.
    public let ttl: Duration
    private let now: @Sendable () -> Date

    public static let defaultTTL: Duration = .seconds(60)

    public init(directory: String, ttl: Duration = FailedBuilders.defaultTTL,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.directory = directory
        self.ttl = ttl
        self.now = now
    }

    /// `failed-builders` beside `Scheduler.defaultStateDirectory(environment:)`'s `current-load`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        directory(besideSlotLocks: Scheduler.defaultStateDirectory(environment: environment))
    }

    /// `failed-builders` beside a slot lock directory.
    public static func directory(besideSlotLocks slots: String) -> String {
        (slots as NSString).deletingLastPathComponent + "/failed-builders"
    }

    /// The failure remembered for `store`, unless none is or it has expired.
    public func remembered(_ store: String) -> BuilderFailure? {
        guard let f = read(path(store)), f.store == store, f.retryAt > now() else { return nil }
        return f
    }

    /// Every failure still remembered, by store URI.
    public func all() -> [BuilderFailure] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let t = now()
        return names.filter { !$0.hasPrefix(".") }.compactMap { read(directory + "/" + $0) }
            .filter { $0.retryAt > t }.sorted { $0.store < $1.store }
    }

    /// Remembers that `store` failed now; returns the record written. Errors writing it are
    /// ignored (the failure is still reported; only the memory is lost).
    @discardableResult
    public func record(_ store: String, phase: String, message: String) -> BuilderFailure {
        let t = now()
        let f = BuilderFailure(store: store, phase: phase, message: message, failedAt: t, retryAt: t + ttl.seconds)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let text = """
            store: \(f.store)
            phase: \(oneLine(f.phase))
            failed-at: \(Int64(f.failedAt.timeIntervalSince1970))
            retry-at: \(Int64(f.retryAt.timeIntervalSince1970.rounded(.up)))
            message: \(oneLine(f.message))

            """
        let final = path(store)
        let temp = directory + "/.tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        if FileManager.default.createFile(atPath: temp, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]) {
            if rename(temp, final) != 0 { unlink(temp) }
        }
        return f
    }

    /// Forgets `store`'s failure (it answered).
    public func forget(_ store: String) {
        let p = path(store)
        if FileManager.default.fileExists(atPath: p) { unlink(p) }
    }

    func path(_ store: String) -> String { directory + "/" + LockFiles.escapeUri(store) }

    private func oneLine(_ s: String) -> String {
        String(s.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }

    private func read(_ path: String) -> BuilderFailure? {
        guard let data = FileManager.default.contents(atPath: path), data.count < 64 << 10 else { return nil }
        var fields: [String: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...].drop { $0 == " " })
        }
        guard let store = fields["store"], let failed = fields["failed-at"].flatMap(Int64.init),
              let retry = fields["retry-at"].flatMap(Int64.init) else { return nil }
        return BuilderFailure(store: store, phase: fields["phase"] ?? "", message: fields["message"] ?? "",
                              failedAt: Date(timeIntervalSince1970: TimeInterval(failed)),
                              retryAt: Date(timeIntervalSince1970: TimeInterval(retry)))
    }
}
