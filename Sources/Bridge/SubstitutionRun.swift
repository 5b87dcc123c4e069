import Foundation
import NixCore
import NixStore
import NixWire

/// One substitution of a planned list of paths (references first). Small NARs are fetched
/// ahead of the adding, many NarFromPath requests in flight at once on each source's
/// connection, checked in memory, and added in batches with AddMultipleToStore, one batch
/// in flight while the next is gathered. Large NARs stream through alone
/// (`Substituter.stream`). A small NAR that fails is fetched again from the next source,
/// after the batch before it was added, so references still go first.
struct SubstitutionRun {
    let substituter: Substituter
    let plan: [LookupAnswer]
    let events: @Sendable (Substituter.Event) -> Void

    /// A small NAR fetched and checked, ready for a batch.
    struct Fetched: Sendable {
        var answer: LookupAnswer
        var store: String
        var nar: PathWithNAR
    }

    struct Failed: Error {
        var store: String
        var error: String
    }

    /// A batch sent to the destination, not yet answered.
    struct InFlight {
        var batch: [Fetched]
        var task: Task<Void, any Error>
    }

    func isSmall(_ answer: LookupAnswer) -> Bool {
        (answer.best?.info.narSize ?? .max) <= substituter.batchableNARSize
    }

    func run() async throws {
        var fetches: [Int: Task<Result<Fetched, Failed>, Never>] = [:]
        defer { for t in fetches.values { t.cancel() } }
        var next = 0
        var aheadBytes: UInt64 = 0
        var batch: [Fetched] = []
        var batchBytes: UInt64 = 0
        var inFlight: InFlight?

        for (i, answer) in plan.enumerated() {
            // Keep the sources busy: start fetches up to the look-ahead bounds.
            while next < plan.count, next - i < substituter.aheadMaxPaths, aheadBytes < substituter.aheadMaxBytes {
                if isSmall(plan[next]) {
                    fetches[next] = fetchWhole(plan[next])
                    aheadBytes += plan[next].best?.info.narSize ?? 0
                }
                next += 1
            }
            guard isSmall(answer), let fetch = fetches.removeValue(forKey: i) else {
                // Large: everything before it must be in the destination first.
                try await add(&batch, &batchBytes, &inFlight)
                try await settle(&inFlight)
                try await substituter.fetch(answer, events: events)
                continue
            }
            let result = await fetch.value
            aheadBytes -= answer.best?.info.narSize ?? 0
            switch result {
            case let .success(f):
                batch.append(f)
                batchBytes += UInt64(f.nar.nar.count)
                if batchBytes >= substituter.batchMaxBytes || batch.count >= substituter.batchMaxPaths {
                    try await add(&batch, &batchBytes, &inFlight)
                }
            case let .failure(failed):
                let failure = "\(failed.store): \(failed.error)"
                events(.sourceFailed(answer.path, from: failed.store, error: failed.error))
                try await add(&batch, &batchBytes, &inFlight)
                try await settle(&inFlight)
                try await substituter.fetch(answer, skipping: [failed.store], failures: [failure], events: events)
            }
        }
        try await add(&batch, &batchBytes, &inFlight)
        try await settle(&inFlight)
    }

    /// Fetches a small NAR whole from the path's best source, checked against its info.
    func fetchWhole(_ answer: LookupAnswer) -> Task<Result<Fetched, Failed>, Never> {
        let events = self.events
        let stores = substituter.lookup.stores
        let storeDir = substituter.lookup.storeDir
        return Task {
            guard let location = answer.best else { return .failure(Failed(store: "?", error: "no trusted source")) }
            guard let source = stores.first(where: { $0.uri.description == location.store }) else {
                return .failure(Failed(store: location.store, error: "store not open"))
            }
            let info = location.info
            events(.copying(answer.path, from: location.store, narSize: info.narSize))
            let buffer = NARBuffer(capacity: info.narSize)
            // Kept only when the whole NAR matched.
            let nar = VerifiedNARStream(info, storeDir: storeDir) { buffer.append($0) }
            do {
                try await source.narFromPath(info.path) { try await nar.receive($0) }
                try await nar.finish()
            } catch {
                return .failure(Failed(store: location.store, error: "\(error)"))
            }
            return .success(Fetched(answer: answer, store: location.store,
                                    nar: PathWithNAR(info: info.copied, nar: buffer.bytes)))
        }
    }

    /// Sends the gathered batch (after the one in flight was added) and starts a new one.
    func add(_ batch: inout [Fetched], _ bytes: inout UInt64, _ inFlight: inout InFlight?) async throws {
        guard !batch.isEmpty else { return }
        try await settle(&inFlight)
        let destination = substituter.destination
        let events = self.events
        let sent = batch
        let observer = substituter.batchAdded
        let activity = substituter.lookup.activity
        inFlight = InFlight(batch: sent, task: Task {
            // Nix 2.8's LocalStore::addToStore reads nothing for a path that is already valid,
            // so inside AddMultipleToStore such a path would leave its NAR to be read as the
            // next path's info: leave out what became valid since planning (a refused batch
            // is still redone path by path, in `settle`).
            let have = try await destination.queryValidPaths(Set(sent.map(\.answer.path)))
            // Signatures were checked against our trusted-public-keys (see `Substituter.stream`).
            try await destination.addMultipleToStore(sent.filter { !have.contains($0.answer.path) }.map(\.nar),
                                                     dontCheckSigs: true)
            observer?(sent.map(\.answer.path))
            for f in sent { events(.fetched(f.answer.path, from: f.store, narSize: f.nar.info.narSize)) }
            if let activity {
                for (store, fetched) in Dictionary(grouping: sent, by: \.store) {
                    activity.recordSubstitutions(store, narSizes: fetched.map(\.nar.info.narSize))
                }
            }
        })
        batch = []
        bytes = 0
    }

    /// Waits for the batch in flight. If the destination refused it, the paths it did not
    /// add are fetched again one by one (streamed, with failover), in order.
    func settle(_ inFlight: inout InFlight?) async throws {
        guard let current = inFlight else { return }
        inFlight = nil
        do {
            try await current.task.value
        } catch {
            let destination = substituter.destination
            let have = try await destination.queryValidPaths(Set(current.batch.map(\.answer.path)))
            for f in current.batch {
                if have.contains(f.answer.path) {
                    events(.fetched(f.answer.path, from: f.store, narSize: f.nar.info.narSize))
                } else {
                    try await substituter.fetch(f.answer, events: events)
                }
            }
        }
    }
}

/// Collects a small NAR in memory while it is checked.
final class NARBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var data: [UInt8] = []

    init(capacity: UInt64) { data.reserveCapacity(Int(capacity)) }

    func append(_ bytes: [UInt8]) { lock.withLock { data += bytes } }
    var bytes: [UInt8] { lock.withLock { data } }
}
