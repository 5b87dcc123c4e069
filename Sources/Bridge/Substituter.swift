import Foundation
import NixCore
import NixSigning
import NixStore
import NixWire

/// Fetches paths from the fleet into a destination store, references first, from the best
/// trusted source of each (the order `Lookup` ranks them in). Small NARs are fetched ahead,
/// pipelined, checked in memory and added in batches (AddMultipleToStore); large ones
/// stream in one pass from NarFromPath into AddToStoreNar, checked on the way, their last
/// bytes held back until the whole NAR matched. A NAR that does not match, or a source that
/// fails midway, registers nothing: the next source that has the path is tried.
public struct Substituter: Sendable {
    public var lookup: Lookup
    /// Where paths go (the local daemon, `local`, or a chroot store).
    public var destination: RemoteStore
    /// NARs up to this size are fetched ahead whole and added in batches; larger ones
    /// stream through alone.
    public var batchableNARSize: UInt64 = 1 << 20
    /// At most this many NAR bytes (and `batchMaxPaths` paths) go in one AddMultipleToStore.
    public var batchMaxBytes: UInt64 = 4 << 20
    public var batchMaxPaths = 256
    /// How far fetching may run ahead of adding: paths, and bytes of small NARs.
    public var aheadMaxPaths = 512
    public var aheadMaxBytes: UInt64 = 16 << 20
    /// Told the paths of each AddMultipleToStore batch once the destination added them (tests).
    var batchAdded: (@Sendable ([StorePath]) -> Void)?

    public init(lookup: Lookup, destination: RemoteStore) {
        self.lookup = lookup
        self.destination = destination
    }

    public enum SubstituteError: Error, CustomStringConvertible {
        case noTrustedSource(path: String, reasons: [String])
        case allSourcesFailed(path: String, failures: [String])

        public var description: String {
            switch self {
            case let .noTrustedSource(p, reasons):
                return "no trusted substitute for '\(p)'" + (reasons.isEmpty ? " on any store" : ":\n  " + reasons.joined(separator: "\n  "))
            case let .allSourcesFailed(p, failures):
                return "cannot substitute '\(p)':\n  " + failures.joined(separator: "\n  ")
            }
        }
    }

    /// What happened, for progress reports.
    public enum Event: Sendable {
        case planned([StorePath], narBytes: UInt64)
        /// A NAR starts to arrive from `from` (sent again for each source tried).
        case copying(StorePath, from: String, narSize: UInt64)
        /// `bytes` of the NAR have arrived; sent about once per `progressStep` bytes.
        case received(StorePath, from: String, bytes: UInt64)
        case fetched(StorePath, from: String, narSize: UInt64)
        case sourceFailed(StorePath, from: String, error: String)
        case untrusted(StorePath, from: String)
        /// A store could not be asked where paths are (its answers are missing).
        case storeFailed(store: String, error: String)
    }

    /// Makes `paths` valid in the destination, with their closures. Returns the paths that
    /// were fetched (already valid ones are skipped).
    public func substitute(_ paths: [StorePath], events: @escaping @Sendable (Event) -> Void = { _ in }) async throws -> [StorePath] {
        TransferMemory.bound()
        let plan = try await self.plan(paths, events: events)
        events(.planned(plan.map(\.path), narBytes: plan.reduce(0) { $0 + ($1.best?.info.narSize ?? 0) }))
        try await SubstitutionRun(substituter: self, plan: plan, events: events).run()
        return plan.map(\.path)
    }

    /// The paths to fetch, references before referrers: what the destination lacks of the
    /// closure of `paths`, as found on the fleet. Only fetched paths' references are looked up.
    func plan(_ paths: [StorePath], events: @Sendable (Event) -> Void) async throws -> [LookupAnswer] {
        var wanted: [StorePath: LookupAnswer] = [:]
        var reported = Set<String>()
        var frontier = Array(Set(paths))
        while !frontier.isEmpty {
            // Ask the destination and the fleet at once (one round trip per level, not two);
            // answers for paths the destination already has are dropped.
            let destination = self.destination
            let asked = Set(frontier).filter { wanted[$0] == nil }
            guard !asked.isEmpty else { break }
            async let valid = destination.queryValidPaths(asked)
            let result = await lookup.lookup(Array(asked))
            for f in result.failures where reported.insert(f.store).inserted { events(.storeFailed(store: f.store, error: f.error)) }
            let have = try await valid
            frontier = []
            for found in result.answers where !have.contains(found.path) && wanted[found.path] == nil {
                let answer = rechecked(found)
                guard let best = answer.best else {
                    for l in answer.locations { events(.untrusted(answer.path, from: l.store)) }
                    let reasons = answer.locations.map { "\($0.store): \($0.verification)" }
                        + result.failures.map { "\($0.store): \($0.error)" }
                    throw SubstituteError.noTrustedSource(path: lookup.storeDir.print(answer.path), reasons: reasons)
                }
                wanted[answer.path] = answer
                frontier += best.info.references.filter { $0 != answer.path && wanted[$0] == nil }
            }
        }
        return Self.referencesFirst(wanted)
    }

    /// A trust verdict remembered in the narinfo cache is only as safe as the cache file, so
    /// every cached location (each may be used, failover included) is verified again.
    func rechecked(_ answer: LookupAnswer) -> LookupAnswer { lookup.rechecked(answer) }

    /// Orders answers so that every path comes after the paths it references. Iterative
    /// (an explicit stack): the graph comes from peers, and a deep reference chain must not
    /// overflow the call stack. A cycle (impossible in a real store) is cut where it closes.
    static func referencesFirst(_ answers: [StorePath: LookupAnswer]) -> [LookupAnswer] {
        var order: [LookupAnswer] = []
        order.reserveCapacity(answers.count)
        var state: [StorePath: Bool] = [:] // false: visiting, true: done
        // Each frame: a path and its references still to visit (in reverse order, popped).
        var stack: [(path: StorePath, pending: [StorePath])] = []
        for root in answers.keys.sorted() where state[root] == nil {
            state[root] = false
            stack.append((root, Self.references(of: root, answers)))
            while !stack.isEmpty {
                if let r = stack[stack.count - 1].pending.popLast() {
                    guard state[r] == nil, answers[r] != nil else { continue }
                    state[r] = false
                    stack.append((r, Self.references(of: r, answers)))
                } else {
                    let done = stack.removeLast().path
                    state[done] = true
                    order.append(answers[done]!)
                }
            }
        }
        return order
    }

    /// A path's references other than itself, in the order `referencesFirst` visits them
    /// (sorted, reversed for popping).
    private static func references(of p: StorePath, _ answers: [StorePath: LookupAnswer]) -> [StorePath] {
        (answers[p]?.best?.info.references ?? []).filter { $0 != p }.sorted().reversed()
    }

    /// Tries each trusted source of one path in turn (but those in `skipping`), streaming
    /// the NAR in one pass.
    func fetch(_ answer: LookupAnswer, skipping: Set<String> = [], failures earlier: [String] = [],
               events: @escaping @Sendable (Event) -> Void) async throws {
        var failures = earlier
        for location in answer.locations where location.isTrusted && !skipping.contains(location.store) {
            guard let source = lookup.stores.first(where: { $0.uri.description == location.store }) else { continue }
            do {
                events(.copying(answer.path, from: location.store, narSize: location.info.narSize))
                try await stream(location.info, from: source) { events(.received(answer.path, from: location.store, bytes: $0)) }
                events(.fetched(answer.path, from: location.store, narSize: location.info.narSize))
                lookup.activity?.recordSubstitution(location.store, narSize: location.info.narSize)
                return
            } catch {
                failures.append("\(location.store): \(error)")
                events(.sourceFailed(answer.path, from: location.store, error: "\(error)"))
                lookup.noteFailure(location.store, error)
            }
        }
        throw SubstituteError.allSourcesFailed(path: lookup.storeDir.print(answer.path), failures: failures)
    }

    /// How often `received` events are sent: cheap enough for a 2 GiB NAR.
    static let progressStep: UInt64 = 1 << 20

    /// One pass: the NAR goes from NarFromPath straight into a framed AddToStoreNar, hashed
    /// and counted on the way; the source is held back while the destination catches up.
    /// Its last chunk is sent only once the whole NAR matched `info`; on a mismatch or a
    /// failing source the destination connection is closed before that, so the destination
    /// daemon cannot have finished the NAR and registers nothing.
    func stream(_ info: PathInfo, from source: RemoteStore,
                received: @escaping @Sendable (UInt64) -> Void = { _ in }) async throws {
        let storeDir = lookup.storeDir
        // We checked the signatures against our trusted-public-keys; the destination's own
        // list may not have the builders' keys, as with Nix's substituters.
        try await destination.addToStoreNar(info.copied, dontCheckSigs: true) { frames in
            let nar = VerifiedNARStream(info, storeDir: storeDir) { try await frames.write($0) }
            try await source.narFromPath(info.path) { bytes in
                let (before, after) = try await nar.receive(bytes)
                if after / Self.progressStep != before / Self.progressStep { received(after) }
            }
            try await nar.finish()
        }
    }
}
