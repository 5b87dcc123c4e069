import NixCore
import NixStore

/// Working ahead of the client. Nix walks a closure one QueryPathInfo at a time and then
/// asks for NARs one at a time, each a round trip to us and, without this, one more from us
/// to a builder. So: when a client asks about a path, its references are looked up at once
/// (the client asks about them next); when it starts asking for NARs, the small NARs of
/// the paths it asked about are fetched, pipelined, and checked before it asks (bounded:
/// `narPrefetchCount` NARs, `narPrefetchBudget` bytes; each at most `holdBack`). Nix asks
/// for NARs in its own topological order; prefetching every candidate within the bounds,
/// rather than guessing the next few, is what makes them hit (a window of 256 hit 22 %
/// of a 1,000-path `nix copy`; the whole set hits all).
extension FleetView {
    /// A positive answer and when it was got.
    struct Remembered {
        var answer: LookupAnswer
        var at: ContinuousClock.Instant
    }

    /// How many levels of references are looked up ahead of the client.
    static let prefetchDepth = 4
    static let narPrefetchCount = 4096
    static let narPrefetchBudget: UInt64 = 32 << 20

    /// Answers for `paths`: remembered ones (younger than `recentTTL`), those a prefetch is
    /// already looking up, and one fresh lookup for the rest. Then their references are
    /// looked up in the background.
    func answers(_ paths: [StorePath]) async -> [LookupAnswer] {
        guard !paths.isEmpty else { return [] }
        let now = ContinuousClock.now
        var out: [LookupAnswer] = []
        var fresh: [StorePath] = []
        var waiting: [(StorePath, Task<[StorePath: LookupAnswer], Never>)] = []
        for p in paths {
            if let r = recent[p], now - r.at < Self.recentTTL {
                out.append(r.answer)
            } else if let t = pendingInfo[p] {
                waiting.append((p, t))
            } else {
                fresh.append(p)
            }
        }
        if !fresh.isEmpty {
            statistics.lookups += 1
            statistics.pathsLookedUp += fresh.count
            // Cached verdicts are verified again before anything is served or signed.
            let answers = lookup.rechecked(await lookup.lookup(fresh).answers)
            remember(answers)
            out += answers
        }
        for (p, t) in waiting { out.append(await t.value[p] ?? LookupAnswer(path: p, locations: [])) }
        prefetchReferences(of: out)
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
        let task = Task { () -> [StorePath: LookupAnswer] in
            let result = await lookup.lookup(list)
            var byPath: [StorePath: LookupAnswer] = [:]
            for a in lookup.rechecked(result.answers) { byPath[a.path] = a }
            self.finishPrefetch(byPath, depth: depth)
            return byPath
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

    /// The NAR, if it was prefetched and checked; forgets it either way.
    func takePrefetchedNAR(_ path: StorePath) async -> [UInt8]? {
        if narTaken.count >= Self.recentLimit { narTaken = [] }
        narTaken.insert(path)
        guard let entry = prefetchedNARs.removeValue(forKey: path) else { return nil }
        prefetchedBytes -= entry.size
        return await entry.task.value
    }

    /// Starts fetching the NARs of the most recently asked-about paths, up to the bounds.
    func prefetchNARs() {
        let now = ContinuousClock.now
        while prefetchedNARs.count < Self.narPrefetchCount, let p = narCandidates.popLast() {
            guard !narTaken.contains(p), let r = recent[p], now - r.at < Self.recentTTL,
                  let best = r.answer.best, best.info.narSize <= Self.holdBack,
                  let store = lookup.stores.first(where: { $0.uri.description == best.store }) else { continue }
            if prefetchedBytes + best.info.narSize > Self.narPrefetchBudget {
                narCandidates.append(p)
                return
            }
            narTaken.insert(p)
            let info = best.info
            let task = Task { () -> [UInt8]? in
                let collected = Collected()
                // Held whole until checked: only a NAR that matches its info is kept.
                let outcome = await Self.stream(info, from: store, holdBack: info.narSize) { collected.bytes = $0 }
                guard case .done = outcome else { return nil }
                return collected.bytes
            }
            prefetchedNARs[p] = (task, info.narSize)
            prefetchedBytes += info.narSize
        }
    }
}

/// The one chunk a whole-held NAR arrives in.
private final class Collected: @unchecked Sendable {
    // Written once by `stream`'s sink before the task returns, read after.
    var bytes: [UInt8] = []
}
