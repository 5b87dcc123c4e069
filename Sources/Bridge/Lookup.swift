import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore
import Synchronization

/// One store that holds a path, with what we know of the copy there.
public struct PathLocation: Sendable {
    /// The store URI, as configured.
    public var store: String
    public var info: PathInfo
    /// Which trusted keys signed it, or why it cannot be used.
    public var verification: PathVerification
    /// The answer came from the SQLite cache, not from the store.
    public var fromCache: Bool
    /// The copy may be used: signed, or content-addressed (a NAR that does not match its
    /// address is refused as it streams in).
    public var isTrusted: Bool { verification.isTrustedOnceNARMatches }
}

/// Where one path is across the fleet.
public struct LookupAnswer: Sendable {
    public var path: StorePath
    /// Every store that has the path, best source first (see `Lookup.speedFactors`).
    public var locations: [PathLocation]
    /// The first location we may use (trusted), if any.
    public var best: PathLocation? { locations.first { $0.isTrusted } }
}

/// Asks every store at once whether it has paths: the cache first, then, for what the cache
/// does not know, one pipelined QueryValidPaths and QueryPathInfo batch per store. Every
/// answer, positive or negative, is written back to the cache, a trusted one with its trust
/// verdict (see `TrustVerdicts`: kept only under the same trusted-public-keys, sigs-needed and
/// store directory, so any change to those makes the paths be verified again) and a compact
/// record of its fields (`NarInfoRecord`), so a warm lookup neither parses nor verifies.
///
/// Sources are ranked "fewest hops, then machine speed factor":
/// every store is reached directly (one hop), so the rank is the machine's speed factor,
/// higher first; stores without one (substituters that are not machines) come after every
/// machine; ties keep the order the stores were given (machines file order).
public struct Lookup: Sendable {
    public var stores: [RemoteStore]
    public var trustedKeys: TrustedKeys
    public var sigsNeeded: Int
    public var cache: NarInfoCache?
    public var storeDir: StoreDirectory
    /// Speed factor per store URI (as `StoreURI.description` prints it), from the machines.
    public var speedFactors: [String: Double]
    /// Stores that timed out recently are not asked again (their cached answers still count);
    /// a store that times out is recorded there, one that answers is forgotten.
    public var failedBuilders: FailedBuilders?
    /// Where what each store did is recorded for `status` (cache hits and misses here;
    /// substitutions and builds by their commands).
    public var activity: BuilderActivity?
    /// Told what each store did, in process (`serve`'s metrics).
    public var observer: FleetObserver?
    /// Told when answers could not be written to the cache (a full disk): the lookup goes on
    /// without caching them, and whoever runs it says so.
    public var cacheWriteFailed: (@Sendable (any Error) -> Void)?

    public init(stores: [RemoteStore], trustedKeys: TrustedKeys, sigsNeeded: Int = 1,
                cache: NarInfoCache? = nil, storeDir: StoreDirectory = .default,
                speedFactors: [String: Double] = [:], failedBuilders: FailedBuilders? = nil,
                activity: BuilderActivity? = nil) {
        self.stores = stores
        self.trustedKeys = trustedKeys
        self.sigsNeeded = sigsNeeded
        self.cache = cache
        self.storeDir = storeDir
        self.speedFactors = speedFactors
        self.failedBuilders = failedBuilders
        self.activity = activity
    }

    /// The digest of this lookup's trust settings under which verdicts are kept in the cache.
    public var verdictKey: String {
        TrustVerdicts(trustedKeys: trustedKeys, sigsNeeded: sigsNeeded, storeDir: storeDir).key
    }

    /// Store indices, best source first.
    var ranking: [Int] {
        let factors = stores.map { speedFactors[$0.uri.description] }
        return stores.indices.sorted { a, b in
            switch (factors[a], factors[b]) {
            case let (x?, y?) where x != y: return x > y
            case (_?, nil): return true
            case (nil, _?): return false
            default: return a < b
            }
        }
    }

    /// What the stores said, and the stores that could not be asked (with why).
    public struct Result: Sendable {
        public var answers: [LookupAnswer]
        public var failures: [(store: String, error: String)]
    }

    /// - Parameter answered: called with each store's URI as soon as that store answered
    ///   (for progress reports).
    public func lookup(_ paths: [StorePath], answered: @Sendable (String) -> Void = { _ in }) async -> Result {
        let verdicts = TrustVerdicts(trustedKeys: trustedKeys, sigsNeeded: sigsNeeded, storeDir: storeDir)
        let memo = VerificationMemo()
        let found = await withTaskGroup(of: (Int, StoreAnswer).self) { group in
            for (i, store) in stores.enumerated() {
                group.addTask { (i, await self.ask(store, paths, verdicts: verdicts, memo: memo)) }
            }
            var out = [StoreAnswer?](repeating: nil, count: stores.count)
            for await (i, a) in group {
                out[i] = a
                answered(stores[i].uri.description)
            }
            return out.map { $0! }
        }
        let ranking = self.ranking
        let uris = stores.map(\.uri.description)
        var answers: [LookupAnswer] = []
        answers.reserveCapacity(paths.count)
        for (n, path) in paths.enumerated() {
            var locations: [PathLocation] = []
            for i in ranking {
                guard let f = found[i].found[n] else { continue }
                locations.append(PathLocation(store: uris[i], info: f.info, verification: f.verification,
                                              fromCache: f.fromCache))
            }
            answers.append(LookupAnswer(path: path, locations: locations))
        }
        let failures = found.enumerated().compactMap { i, a in
            a.error.map { (store: uris[i], error: $0) }
        }
        return Result(answers: answers, failures: failures)
    }

    /// One store's copy of a path, judged.
    struct Found: Sendable {
        var info: PathInfo
        var verification: PathVerification
        var fromCache: Bool
    }

    /// What one store holds of `paths`: `found[n]` is about `paths[n]`.
    struct StoreAnswer: Sendable {
        var found: [Found?]
        var error: String?
    }

    /// Asks one store: the cache first (with the verdicts recorded under the current trust
    /// settings), the store itself for the rest. Paths are verified here, in the store's own
    /// task, so the stores' checks run in parallel and beside the other stores' traffic.
    func ask(_ store: RemoteStore, _ paths: [StorePath], verdicts: TrustVerdicts, memo: VerificationMemo) async -> StoreAnswer {
        var answer = StoreAnswer(found: Array(repeating: nil, count: paths.count))
        let uri = store.uri.description
        // Positions in `paths` the cache could not answer.
        var unknown = Array(paths.indices)
        if let cache {
            unknown = []
            var judged: [(hashPart: String, narInfoText: String, value: String)] = []
            var signers: [String: [PublicKey]?] = [:]
            do {
                let outcomes = try cache.answers(storeURI: uri, hashParts: paths.map(\.hashPart), verdictKey: verdicts.key)
                for (n, outcome) in outcomes.enumerated() {
                    switch outcome {
                    case let .hit(hit):
                        guard let info = Self.info(of: hit, storeDir: storeDir), info.path == paths[n] else {
                            unknown.append(n)
                            continue
                        }
                        if let verdict = hit.verdict, let v = verdicts.decode(verdict, for: info, keys: &signers) {
                            answer.found[n] = Found(info: info, verification: v, fromCache: true)
                            continue
                        }
                        let v = verdicts.verify(info, memo: memo)
                        answer.found[n] = Found(info: info, verification: v, fromCache: true)
                        if let value = verdicts.encode(v), let text = hit.narInfoText {
                            judged.append((paths[n].hashPart, text, value))
                        }
                    case .missing: continue
                    case .unknown: unknown.append(n)
                    }
                }
            } catch {
                unknown = Array(paths.indices)
                answer.found = Array(repeating: nil, count: paths.count)
            }
            // Answers cached before verdicts were (or under other trust settings) get one now.
            cacheWrite { try cache.recordVerdicts(storeURI: uri, key: verdicts.key, judged) }
            // A hit is a path this store was not asked about: the cache answered, found or not.
            activity?.recordLookup(uri, hits: paths.count - unknown.count, misses: unknown.count)
            observer?.cacheAnswered(uri, paths.count - unknown.count, unknown.count)
        }
        guard !unknown.isEmpty else { return answer }
        if let failed = failedBuilders?.remembered(uri) {
            answer.error = "not asked: it \(failed.summary())"
            return answer
        }
        let start = ContinuousClock.now
        do {
            let asked = Set(unknown.map { paths[$0] })
            // Only what was asked: a peer's extra paths are not looked at.
            let valid = try await store.queryValidPaths(asked).intersection(asked)
            // The store's misses are written while its path infos are on the way.
            async let infosAsync = store.queryPathInfos(Array(valid))
            if let cache {
                var seen = Set<String>()
                let missing = unknown.map { paths[$0] }.filter { !valid.contains($0) && seen.insert($0.hashPart).inserted }
                cacheWrite {
                    try LookupCacheText.register(cache, uri, storeDir: storeDir)
                    try cache.record(storeURI: uri, entries: [], missing: missing.map(\.hashPart))
                }
            }
            let infos = try await infosAsync
            var fresh: [NarInfoCache.Entry] = []
            fresh.reserveCapacity(infos.count)
            var byPath: [StorePath: Found] = [:]
            byPath.reserveCapacity(infos.count)
            for (path, fetched) in infos {
                guard let fetched else { continue }
                guard asked.contains(path) else { continue }
                // Malformed signatures never verify; they are not kept, cached or served.
                let info = fetched.withWellFormedSignatures
                let v = verdicts.verify(info, memo: memo)
                byPath[path] = Found(info: info, verification: v, fromCache: false)
                if cache != nil {
                    let text = LookupCacheText.narInfo(info, storeDir: storeDir)
                    fresh.append(.init(hashPart: path.hashPart, narInfoText: text,
                                       verdict: verdicts.encode(v).map { .init(key: verdicts.key, value: $0) },
                                       record: LookupCacheText.record(info)))
                }
            }
            for n in unknown { answer.found[n] = byPath[paths[n]] }
            if let cache { cacheWrite { try cache.record(storeURI: uri, entries: fresh, missing: []) } }
            failedBuilders?.forget(uri)
            observer?.storeAnswered(uri, FleetObserver.seconds(since: start))
        } catch {
            answer.error = "\(error)"
            noteFailure(uri, error)
        }
        return answer
    }
}

extension Lookup {
    /// Has cache write failures printed as a warning naming the error (the file, SQLite's
    /// reason), at most once per `interval`, so a full disk is said, not spammed.
    public mutating func warnOnCacheWriteFailures(every interval: Duration = .seconds(60),
                                                  _ print: @escaping @Sendable (String) -> Void) {
        let last = Mutex<ContinuousClock.Instant?>(nil)
        cacheWriteFailed = { error in
            let now = ContinuousClock.now
            let due = last.withLock { l in
                guard l.map({ now - $0 >= interval }) ?? true else { return false }
                l = now
                return true
            }
            if due { print("warning: answers are not cached: \(error)") }
        }
    }

    /// A store that failed: told to the observer; a timeout is remembered (`failedBuilders`)
    /// unless not `remember`.
    func noteFailure(_ store: String, _ error: any Error, remember: Bool = true) {
        let timeout = (error as? StoreError)?.isTimeout == true
        observer?.storeFailed(store, timeout)
        if timeout, remember, let e = error as? StoreError {
            failedBuilders?.record(store, phase: e.timeoutPhase ?? "", message: "\(e)")
        }
    }

    /// Writes to the cache; a failure is reported, not thrown (the answers stand without it).
    func cacheWrite(_ body: () throws -> Void) {
        do { try body() } catch { cacheWriteFailed?(error) }
    }

    /// A cached answer's PathInfo: from its compact record when it has one, else parsed from
    /// its text (answers cached before records were, or by other writers).
    static func info(of hit: NarInfoCache.Hit, storeDir: StoreDirectory) -> PathInfo? {
        if let record = hit.record, let info = NarInfoRecord.decode(record) { return info.withWellFormedSignatures }
        guard let text = hit.narInfoText else { return nil }
        return try? NarInfo(parsing: text, whence: "narinfo cache", storeDir: storeDir).pathInfo
    }

    /// The PathInfo in a cached answer's compact record, or nil if it is not a valid one
    /// (for diagnostics and benchmarks).
    public static func decodeRecord(_ record: [UInt8]) -> PathInfo? { NarInfoRecord.decode(record) }
}

/// How store answers are kept in the narinfo cache: as narinfo text (the worker protocol has
/// no NAR URL, so the URL names the NAR by its hash).
enum LookupCacheText {
    static func narInfo(_ info: PathInfo, storeDir: StoreDirectory) -> String {
        NarInfo(pathInfo: info, url: "nar/" + info.narHash.string(.nix32, withAlgorithm: false) + ".nar",
                compression: "none").render(in: storeDir)
    }

    /// The compact record of what `text` says. The text drops what a narinfo has no field
    /// for (registration time, ultimate), and so must the record, so both read back the same.
    static func record(_ info: PathInfo) -> [UInt8]? {
        var same = info
        same.registrationTime = 0
        same.ultimate = false
        return NarInfoRecord.encode(same)
    }

    static func register(_ cache: NarInfoCache, _ uri: String, storeDir: StoreDirectory) throws {
        if try cache.cacheExists(storeURI: uri) == nil {
            try cache.createCache(storeURI: uri, info: .init(storeDir: storeDir.path, wantMassQuery: true, priority: 0))
        }
    }
}
