import NixCore
import NixStore

/// Working ahead of the client. Nix walks a closure one QueryPathInfo at a time and then
/// asks for NARs one at a time, each a round trip to us and, without this, one more from us
/// to a builder. So: when a client asks about a path, its references are looked up at once
/// (the client asks about them next); when it starts asking for NARs, the small NARs of
/// the paths it asked about are fetched, pipelined, and checked before it asks (bounded:
/// `narPrefetchCount` NARs, `narPrefetchBudget` bytes, each at most `holdBack` and kept
/// `prefetchTTL` for a client that does not ask for it). Nix asks
/// for NARs in its own topological order; prefetching every candidate within the bounds,
/// rather than guessing the next few, is what makes them hit (a window of 256 hit 22 %
/// of a 1,000-path `nix copy`; the whole set hits all).
extension FleetView {
    /// A positive answer and when it was got.
    struct Remembered {
        var answer: LookupAnswer
        var at: ContinuousClock.Instant
    }

    /// A path's answer and the sources that could not be asked ("store: why") when it was
    /// got: without a trusted copy, such an answer says nothing about the path.
    struct Answer {
        var answer: LookupAnswer
        var failures: [String]
        /// The path may be held by a source that could not be asked.
        var isUnknown: Bool { answer.best == nil && !failures.isEmpty }
    }

    /// What a lookup started ahead of the client found.
    struct PrefetchedInfo: Sendable {
        var answers: [StorePath: LookupAnswer]
        var failures: [String]
    }

    /// How many levels of references are looked up ahead of the client.
    static let prefetchDepth = 4
    static let narPrefetchCount = 4096
    /// The default `narPrefetchBudget`.
    public static let defaultNARPrefetchBudget: UInt64 = 32 << 20

    /// Answers for `paths`: remembered ones (younger than `recentTTL`), those a prefetch is
    /// already looking up, and one fresh lookup for the rest, each with the sources that
    /// could not be asked while it was got. Then their references are looked up in the
    /// background.
    func answers(_ paths: [StorePath]) async -> [Answer] {
        guard !paths.isEmpty else { return [] }
        let now = ContinuousClock.now
        var out: [Answer] = []
        var fresh: [StorePath] = []
        var waiting: [(StorePath, Task<PrefetchedInfo, Never>)] = []
        for p in paths {
            if let r = recent[p], now - r.at < Self.recentTTL {
                out.append(Answer(answer: r.answer, failures: []))
            } else if let t = pendingInfo[p] {
                waiting.append((p, t))
            } else {
                fresh.append(p)
            }
        }
        if !fresh.isEmpty {
            statistics.lookups += 1
            statistics.pathsLookedUp += fresh.count
            let result = await lookup.lookup(fresh)
            // Cached verdicts are verified again before anything is served or signed.
            let answers = lookup.rechecked(result.answers)
            remember(answers)
            let failures = result.failures.map { "\($0.store): \($0.error)" }
            out += answers.map { Answer(answer: $0, failures: failures) }
        }
        for (p, t) in waiting {
            let got = await t.value
            out.append(Answer(answer: got.answers[p] ?? LookupAnswer(path: p, locations: []), failures: got.failures))
        }
        prefetchReferences(of: out.map(\.answer))
        return out
    }

    func remember(_ answers: some Sequence<LookupAnswer>) {
        let now = ContinuousClock.now
        for a in answers where a.best != nil {
            if recent.count >= Self.recentLimit { recent = [:] }
            recent[a.path] = Remembered(answer: a, at: now)
        }
    }

    /// Starts one lookup of the references of `answers` not known or being looked up; when
    /// it is done, of theirs, and so on `depth` levels down the closure.
    func prefetchReferences(of answers: [LookupAnswer], depth: Int = FleetView.prefetchDepth) {
        guard depth > 0 else { return }
        let now = ContinuousClock.now
        var refs = Set<StorePath>()
        for a in answers {
            for r in a.best?.info.references ?? [] where r != a.path && pendingInfo[r] == nil {
                if let known = recent[r], now - known.at < Self.recentTTL { continue }
                refs.insert(r)
            }
        }
        guard !refs.isEmpty else { return }
        let lookup = self.lookup
        let list = Array(refs)
        statistics.lookups += 1
        statistics.pathsLookedUp += list.count
        let task = Task { () -> PrefetchedInfo in
            let result = await lookup.lookup(list)
            var byPath: [StorePath: LookupAnswer] = [:]
            for a in lookup.rechecked(result.answers) { byPath[a.path] = a }
            self.finishPrefetch(byPath, depth: depth)
            return PrefetchedInfo(answers: byPath, failures: result.failures.map { "\($0.store): \($0.error)" })
        }
        for r in list { pendingInfo[r] = task }
    }

    private func finishPrefetch(_ answers: [StorePath: LookupAnswer], depth: Int) {
        for p in answers.keys { pendingInfo[p] = nil }
        remember(answers.values)
        prefetchReferences(of: Array(answers.values), depth: depth - 1)
    }

    /// Paths a client asked about, as NAR prefetch candidates.
    func noteAsked(_ paths: some Collection<StorePath>) {
        if narCandidates.count + paths.count > Self.recentLimit { narCandidates.removeFirst(narCandidates.count / 2) }
        narCandidates += paths.filter { !narTaken.contains($0) }
    }

    /// What a prefetched NAR belongs to: the path as one source's info describes it, so
    /// it is only served for that narinfo (another source's copy may be another NAR).
    struct PrefetchKey: Hashable {
        var path: StorePath
        var store: String
        var narHash: Hash
    }

    /// A small NAR fetched ahead (checked before it is kept), and when it was started.
    struct Prefetched {
        var task: Task<[UInt8]?, Never>
        var size: UInt64
        var at: ContinuousClock.Instant
    }

    /// How long a prefetched NAR is kept, by default, for a client that does not ask for it.
    public static let defaultPrefetchTTL: Duration = .seconds(30)

    /// The NAR of `path` as `location` has it, if it was prefetched and checked. Every
    /// prefetched copy of the path is forgotten either way (the client asked for it now).
    func takePrefetchedNAR(_ path: StorePath, for location: PathLocation) async -> [UInt8]? {
        if narTaken.count >= Self.recentLimit { narTaken = [] }
        narTaken.insert(path)
        var match: Prefetched?
        for key in prefetchedNARs.keys where key.path == path {
            guard let entry = forgetPrefetched(key) else { continue }
            if key.store == location.store && key.narHash == location.info.narHash
                && entry.size == location.info.narSize { match = entry }
        }
        guard let match else { return nil }
        return await match.task.value
    }

    /// Drops a prefetched NAR and gives its bytes back to the budget.
    @discardableResult
    func forgetPrefetched(_ key: PrefetchKey) -> Prefetched? {
        guard let entry = prefetchedNARs.removeValue(forKey: key) else { return nil }
        prefetchedBytes -= entry.size
        return entry
    }

    /// Drops the prefetched NAR under `key` if it is the one started at `at` and was not taken.
    func expirePrefetched(_ key: PrefetchKey, startedAt at: ContinuousClock.Instant) {
        guard prefetchedNARs[key]?.at == at else { return }
        forgetPrefetched(key)
        statistics.narsPrefetchExpired += 1
    }

    /// Starts fetching the NARs of the most recently asked-about paths, up to the bounds.
    func prefetchNARs() {
        let now = ContinuousClock.now
        while prefetchedNARs.count < Self.narPrefetchCount, let p = narCandidates.popLast() {
            guard !narTaken.contains(p), let r = recent[p], now - r.at < Self.recentTTL,
                  let best = r.answer.best, best.info.narSize <= Self.holdBack,
                  let store = lookup.stores.first(where: { $0.uri.description == best.store }) else { continue }
            if prefetchedBytes + best.info.narSize > narPrefetchBudget {
                narCandidates.append(p)
                return
            }
            narTaken.insert(p)
            let info = best.info
            let pulled = self.pulled, observer = lookup.observer
            let task = Task { () -> [UInt8]? in
                let collected = Collected()
                // Held whole until checked: only a NAR that matches its info is kept. Pipelined: the
                // sink keeps up.
                let outcome = await Self.stream(info, from: store, holdBack: info.narSize, pulled: pulled,
                                                observer: observer, ownConnection: false) {
                    collected.bytes = $0
                }
                guard case .done = outcome else { return nil }
                return collected.bytes
            }
            let key = PrefetchKey(path: p, store: best.store, narHash: info.narHash)
            prefetchedNARs[key] = Prefetched(task: task, size: info.narSize, at: now)
            prefetchedBytes += info.narSize
            let ttl = prefetchTTL
            Task { [weak self] in
                try? await Task.sleep(for: ttl)
                await self?.expirePrefetched(key, startedAt: now)
            }
        }
    }
}
/// The one chunk a whole-held NAR arrives in.
private final class Collected: @unchecked Sendable {
    // Written once by `stream`'s sink before the task returns, read after.
    var bytes: [UInt8] = []
}
