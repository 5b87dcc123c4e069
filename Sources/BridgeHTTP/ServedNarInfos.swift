import NIOCore
import NixCore
import Synchronization

/// Narinfos already served, by hash part, kept for a short time: a warm narinfo request
/// then costs a dictionary look-up, not a fleet query, a signature and a rendering, and the
/// NAR request that follows it finds the info it checks the URL against.
/// Only positive answers are kept (a path that appears on a builder is served at once);
/// the fleet's narinfo cache keeps the longer-lived positive and negative answers.
final class ServedNarInfos: Sendable {
    struct Entry: Sendable {
        var info: PathInfo
        var text: ByteBuffer
        var expires: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    let ttl: Duration
    /// Beyond this many entries the older half is dropped (bounded memory).
    let capacity: Int

    init(ttl: Duration, capacity: Int = 100_000) {
        self.ttl = ttl
        self.capacity = max(capacity, 2)
    }

    func get(_ hashPart: String) -> Entry? {
        guard ttl > .zero else { return nil }
        let now = ContinuousClock.now
        return entries.withLock { e in
            guard let entry = e[hashPart] else { return nil }
            guard entry.expires > now else {
                e[hashPart] = nil
                return nil
            }
            return entry
        }
    }

    func put(_ hashPart: String, info: PathInfo, text: ByteBuffer) {
        guard ttl > .zero else { return }
        let entry = Entry(info: info, text: text, expires: ContinuousClock.now + ttl)
        entries.withLock { e in
            if e.count >= capacity {
                let cut = e.values.map(\.expires).sorted()[e.count / 2]
                e = e.filter { $0.value.expires > cut }
            }
            e[hashPart] = entry
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
