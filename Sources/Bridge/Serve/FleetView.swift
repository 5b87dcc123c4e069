import NixCore
import NixSigning
import NixStore
import NixWire
import Synchronization

/// The fleet seen as one read-only store that holds only trusted paths: what nix-bridge
/// serves to Nix clients (as an ssh-ng store or an HTTP binary cache).
///
/// A path is in the view when at least one source holds it with signatures that verify
/// against `trusted-public-keys` (`sigs-needed` of them), or with a content address that
/// checks out. Its info is that source's, with the source's signatures kept; when signing
/// keys are given (`secret-key-files`), their signatures are added, so a client that trusts
/// only nix-bridge's key can use it.
public actor FleetView {
    public nonisolated let lookup: Lookup
    public nonisolated let signingKeys: [SecretKey]
    public nonisolated var storeDir: StoreDirectory { lookup.storeDir }

    /// Recent positive answers, so the NarFromPath that follows a QueryPathInfo (as Nix's
    /// clients do) needs no second lookup. Kept `recentTTL`; cleared when full.
    var recent: [StorePath: Remembered] = [:]
    static let recentLimit = 50_000
    static let recentTTL: Duration = .seconds(30)
    /// Lookups started ahead of the client (a path's references, once it asked for the
    /// path), by the paths they look up.
    var pendingInfo: [StorePath: Task<PrefetchedInfo, Never>] = [:]
    /// Trusted paths clients asked about and whose NAR may be wanted next, oldest first
    /// (NAR prefetching takes from the end).
    var narCandidates: [StorePath] = []
    /// Paths whose NAR was asked for or prefetched (never prefetched again).
    var narTaken: Set<StorePath> = []
    /// Small NARs fetched ahead (checked), by the source info they belong to.
    var prefetchedNARs: [PrefetchKey: Prefetched] = [:]
    /// The bytes of `prefetchedNARs`, within `narPrefetchBudget`.
    var prefetchedBytes: UInt64 = 0
    /// The most bytes of prefetched NARs held at once, and how long one is kept untaken.
    public nonisolated let narPrefetchBudget: UInt64
    public nonisolated let prefetchTTL: Duration
    /// NAR bytes received from sources so far (served and prefetched).
    nonisolated let pulled = NARBytesPulled()
    /// What happened so far, for diagnostics.
    public internal(set) var statistics = Statistics()

    public struct Statistics: Sendable, CustomStringConvertible {
        public var lookups = 0
        public var pathsLookedUp = 0
        public var narsServed = 0
        public var narsPrefetched = 0
        /// Prefetched NARs no client asked for within `prefetchTTL`.
        public var narsPrefetchExpired = 0
        public var description: String {
            "\(lookups) lookups of \(pathsLookedUp) paths; \(narsServed) NARs served, \(narsPrefetched) of them prefetched"
                + (narsPrefetchExpired > 0 ? "; \(narsPrefetchExpired) prefetched NARs expired unasked" : "")
        }
    }
    /// NARs up to this size are checked whole before a byte is passed on, so a source that
    /// sends a wrong one is replaced by the next (bounded memory: one buffer per request).
    static let holdBack: UInt64 = 1 << 20

    public init(lookup: Lookup, signingKeys: [SecretKey] = [],
                narPrefetchBudget: UInt64 = FleetView.defaultNARPrefetchBudget,
                prefetchTTL: Duration = FleetView.defaultPrefetchTTL) {
        self.lookup = lookup
        self.signingKeys = signingKeys
        self.narPrefetchBudget = narPrefetchBudget
        self.prefetchTTL = prefetchTTL
    }

    /// NAR bytes received from the sources so far (what serving cost the builders).
    public nonisolated var narBytesPulled: UInt64 { pulled.value }

    // MARK: Queries

    /// The path's info as the view serves it, or nil when no source holds a trusted copy.
    public func pathInfo(_ path: StorePath) async throws -> PathInfo? {
        try await pathInfos([path])[path]
    }

    /// Infos of the paths some source holds a trusted copy of; the others are absent.
    /// Throws `QueryError` when a path without a trusted copy may be held by a source that
    /// could not be asked: "not there" would be a lie the client remembers.
    public func pathInfos(_ paths: [StorePath]) async throws -> [StorePath: PathInfo] {
        var out: [StorePath: PathInfo] = [:]
        var unknown: [StorePath] = []
        var failures: [String] = []
        for a in await answers(Array(Set(paths))) {
            if let best = a.answer.best {
                out[a.answer.path] = served(best)
            } else if a.isUnknown {
                unknown.append(a.answer.path)
                for f in a.failures where !failures.contains(f) { failures.append(f) }
            }
        }
        noteAsked(out.keys)
        if !unknown.isEmpty {
            throw QueryError(paths: unknown.sorted().map(storeDir.print), failures: failures)
        }
        return out
    }

    /// A question the view cannot answer honestly: sources that might hold the paths could
    /// not be asked.
    public struct QueryError: Error, Sendable, CustomStringConvertible {
        public var paths: [String]
        /// "store: why", one per source.
        public var failures: [String]

        public var description: String {
            let what = paths.count == 1 ? "'\(paths[0])'" : "\(paths.count) paths (first '\(paths[0])')"
            return "cannot tell whether \(what) is in the fleet: " + (failures.count == 1 ? failures[0]
                : "\(failures.count) builders could not be asked:\n  " + failures.joined(separator: "\n  "))
        }
    }

    /// The paths some source holds a trusted copy of.
    public func validPaths(_ paths: [StorePath]) async throws -> Set<StorePath> {
        Set(try await pathInfos(paths).keys)
    }

    /// The paths the view knows it holds (QueryAllValidPaths): the trusted answers it
    /// remembers. Listing every source's whole store on a client's request would let any
    /// client make every builder enumerate its store; Nix's clients only use this for
    /// `nix path-info --all` and the like, where what was seen is an honest answer.
    public func allPaths() async throws -> Set<StorePath> {
        let now = ContinuousClock.now
        return Set(recent.compactMap { path, r in now - r.at < Self.recentTTL && r.answer.best != nil ? path : nil })
    }

    /// The store path with this hash part (Nix's QueryPathFromHashPart): every source is
    /// asked at once; the first answer whose path is trusted wins. When none is, and a
    /// source could not be asked, throws `QueryError` (the path may be there).
    public func path(hashPart: String) async throws -> StorePath? {
        let stores = lookup.stores
        var failures: [String] = []
        let found = try await withThrowingTaskGroup(of: Result<StorePath?, StoreError>.self, returning: StorePath?.self) { group in
            for store in stores {
                group.addTask {
                    do throws(StoreError) { return .success(try await store.queryPathFromHashPart(hashPart)) }
                    catch { return .failure(error) }
                }
            }
            var tried = Set<StorePath>()
            for try await outcome in group {
                let candidate: StorePath?
                switch outcome {
                case let .success(p): candidate = p
                case let .failure(e):
                    failures.append("\(e.peer): \(e)")
                    lookup.noteFailure(e.peer, e, remember: false)
                    continue
                }
                guard let candidate, tried.insert(candidate).inserted else { continue }
                do {
                    if try await pathInfo(candidate) != nil {
                        group.cancelAll()
                        return candidate
                    }
                } catch let e as QueryError {
                    failures += e.failures.filter { !failures.contains($0) }
                }
            }
            return nil
        }
        if found == nil, !failures.isEmpty {
            throw QueryError(paths: [storeDir.path + "/" + hashPart], failures: failures)
        }
        return found
    }

    // MARK: NAR

    /// Why a NAR could not be served.
    public enum NARError: Error, Sendable, CustomStringConvertible {
        /// No source holds a trusted copy (Nix's wording for a path that is not in a store).
        case notValid(path: String)
        /// What arrived from a source does not match the info it signed.
        case mismatch(path: String, store: String, what: String)
        /// Every trusted source failed before a byte was passed on.
        case allSourcesFailed(path: String, failures: [String])
        /// A source failed after part of the NAR was passed on: the NAR cannot be resumed.
        case sourceFailedMidway(path: String, store: String, error: String)

        public var description: String {
            switch self {
            case let .notValid(p): return "path '\(p)' is not valid"
            case let .mismatch(p, s, w): return "NAR for '\(p)' from '\(s)' does not match its signed info: \(w)"
            case let .allSourcesFailed(p, f): return "cannot get the NAR of '\(p)':\n  " + f.joined(separator: "\n  ")
            case let .sourceFailedMidway(p, s, e): return "'\(s)' failed while sending the NAR of '\(p)': \(e)"
            }
        }
    }

    /// Streams the path's NAR into `sink` from the best trusted source, checking its size
    /// and SHA-256 against the signed info as it passes. The last chunk is held back until
    /// the whole NAR checks out, so a mismatch throws before the receiver has a complete
    /// (wrong) NAR. A source that fails before any byte was passed on (any failure of a NAR
    /// up to 1 MiB, which is checked whole first) is replaced by the next trusted one.
    ///
    /// With `expected` (the info a client was served, as an HTTP client's narinfo), only
    /// sources whose copy has that NAR hash and size are used.
    public func narFromPath(_ path: StorePath, expected: PathInfo? = nil,
                            into sink: @escaping @Sendable ([UInt8]) async throws -> Void) async throws {
        let full = storeDir.print(path)
        statistics.narsServed += 1
        let got = await answers([path]).first
        let sources = (got?.answer.locations ?? []).filter { location in
            guard location.isTrusted else { return false }
            guard let expected else { return true }
            return location.info.narHash == expected.narHash && location.info.narSize == expected.narSize
        }
        guard let first = sources.first else {
            if let got, !got.failures.isEmpty { throw QueryError(paths: [full], failures: got.failures) }
            prefetchNARs()
            throw NARError.notValid(path: full)
        }
        if let bytes = await takePrefetchedNAR(path, for: first) {
            statistics.narsPrefetched += 1
            prefetchNARs()
            try await sink(bytes)
            lookup.activity?.recordSubstitution(first.store, narSize: first.info.narSize)
            return
        }
        prefetchNARs()
        var failures: [String] = []
        for location in sources {
            guard let store = lookup.stores.first(where: { $0.uri.description == location.store }) else { continue }
            let outcome = await Self.stream(location.info, from: store, pulled: pulled, observer: lookup.observer, into: sink)
            switch outcome {
            case .done:
                lookup.activity?.recordSubstitution(location.store, narSize: location.info.narSize)
                return
            case let .sinkFailed(error): throw error
            case let .failed(error, passedOn):
                lookup.noteFailure(location.store, error, remember: false)
                if passedOn {
                    throw NARError.sourceFailedMidway(path: full, store: location.store, error: "\(error)")
                }
                failures.append("\(location.store): \(error)")
            }
        }
        recent[path] = nil
        throw NARError.allSourcesFailed(path: full, failures: failures)
    }

    enum StreamOutcome {
        case done
        case failed(any Error, passedOn: Bool)
        /// The receiver failed (a client gone): its error, as is.
        case sinkFailed(any Error)
    }

    struct SinkFailure: Error {
        var error: any Error
    }

    /// One source's NAR into the sink. The connection hands each chunk to the verified
    /// stream and reads nothing more from the builder until the sink took it, so a slow
    /// receiver holds back only its own transfer (with `ownConnection` the store gives the
    /// NAR a connection nothing else waits behind), and what is held per transfer is a few
    /// chunks, whatever the NAR's size.
    static func stream(_ info: PathInfo, from store: RemoteStore, holdBack: UInt64 = FleetView.holdBack,
                       pulled: NARBytesPulled? = nil, observer: FleetObserver? = nil, ownConnection: Bool = true,
                       into sink: @escaping @Sendable ([UInt8]) async throws -> Void) async -> StreamOutcome {
        let full = store.storeDir.print(info.path)
        let uri = store.uri.description
        // Held back: the first `holdBack` bytes (so a small NAR can still fail over to the
        // next source), then always the latest chunk (so a wrong NAR is never complete).
        let nar = VerifiedNARStream(info, storeDir: store.storeDir, holdBack: holdBack) { bytes in
            do { try await sink(bytes) } catch { throw SinkFailure(error: error) }
        }
        do {
            try await store.narFromPath(info.path, ownConnection: ownConnection) { bytes in
                pulled?.add(bytes.count)
                observer?.narBytes(uri, bytes.count)
                try await nar.receive(bytes)
            }
            try await nar.finish()
            return .done
        } catch {
            // The connection wraps what the sink threw: find the receiver's own error.
            var cause = error
            if case let .sink(_, e)? = error as? StoreError { cause = e }
            switch cause {
            case let e as SinkFailure: return .sinkFailed(e.error)
            case let e as VerifiedNARStream.Mismatch:
                return .failed(NARError.mismatch(path: full, store: uri, what: e.what), passedOn: nar.forwarded > 0)
            default: return .failed(error, passedOn: nar.forwarded > 0)
            }
        }
    }

    // MARK: Signing what is served

    /// The info we serve for a trusted copy: its signatures, plus ours when its signatures
    /// or its info alone prove it (a path trusted by a content address that only its NAR can
    /// prove is served as its source has it: the client checks the address itself).
    private func served(_ location: PathLocation) -> PathInfo {
        let info = location.info
        guard !signingKeys.isEmpty, location.verification.isTrusted else { return info }
        var out = info
        for key in signingKeys {
            if let sig = try? key.sign(info, storeDir: storeDir) { out.sigs.insert(sig.description) }
        }
        return out
    }
}

/// A count of NAR bytes, added to by concurrent transfers.
final class NARBytesPulled: Sendable {
    private let count = Atomic<UInt64>(0)
    func add(_ n: Int) { count.add(UInt64(n), ordering: .relaxed) }
    var value: UInt64 { count.load(ordering: .relaxed) }
}
