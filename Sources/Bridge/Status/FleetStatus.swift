import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore

/// A signing key seen on a machine's recent paths.
public struct SigningKeyUse: Sendable, Hashable {
    /// The key's name (`builder1-1`), from the signatures.
    public var name: String
    /// Whether a key of that name is in the local `trusted-public-keys`.
    public var trusted: Bool
    /// How many of the sampled paths carry a signature by it.
    public var paths: Int
}

/// What a machine's most recently registered paths say about its signing.
public struct RecentPaths: Sendable, Hashable {
    /// How many paths were looked at (the most recent of a bounded sample).
    public var sampled: Int
    /// Of those, the input-addressed ones (a content-addressed path needs no signature).
    public var inputAddressed: Int
    /// Of those, input-addressed paths with no signature: a substituter refuses them.
    public var unsigned: Int
    /// The keys that signed them, most used first.
    public var keys: [SigningKeyUse]
}

/// What `nix-bridge status` shows of one machine.
public struct MachineStatus: Sendable {
    public var machine: Machine
    /// Reachability, Nix version, protocol, trust and round trip (`nix-bridge ping`'s report).
    public var ping: PingReport
    /// Slots locked now by any process sharing the slot-lock directory.
    public var slotsInUse: Int
    /// Nil when the machine could not be reached (or the sample failed: `sampleError`).
    public var recent: RecentPaths?
    public var sampleError: String?
    /// What it did for us within the activity window (builds, NARs fetched, cache answers).
    public var activity = ActivityCounts()

    public var isReachable: Bool { ping.error == nil }

    /// Since when it has been failing: the failure other commands remembered
    /// (`FailedBuilders`), or now when this probe timed out; nil when that is not known.
    public var downSince: Date? {
        guard !isReachable else { return nil }
        return ping.earlierFailure?.failedAt ?? (ping.skippedUntil != nil ? probedAt : nil)
    }

    /// When the probe ran.
    public var probedAt = Date()
}

/// What the narinfo cache holds.
public struct CacheStatus: Sendable {
    public var path: String
    public var fileSize: Int64
    public var positive: Int
    public var negative: Int
    public var expired: Int
    /// Live rows.
    public var rows: Int { positive + negative }
    /// Paths asked of each store within the activity window that the cache answered
    /// (found or not) and that the store had to be asked about, summed over the stores.
    public var hits = 0
    public var misses = 0
    /// The share of those answered by the cache (nil when nothing was asked).
    public var hitRate: Double? { hits + misses == 0 ? nil : Double(hits) / Double(hits + misses) }
}

/// `nix-bridge status`: every machine probed at once, the slot locks and the narinfo cache
/// read. Presentation is the CLI's.
public enum FleetStatus {
    public struct Report: Sendable {
        public var machines: [MachineStatus]
        public var cache: CacheStatus?
        public var cacheError: String?
        /// The window `MachineStatus.activity` and the hit rate count over.
        public var activityWindow: Duration?
    }

    /// Probes every machine of `config` (ping, then a sample of its recent paths' signatures
    /// over a second connection), reads the slot locks of `scheduler` and the `cache`.
    /// `sample` bounds the paths whose info is fetched, `recent` how many of the newest of
    /// them are counted.
    /// `failedBuilders` (the remembered failures) is read, and updated as `ping` updates it;
    /// `activity` gives what each machine did recently and the cache's hit rate.
    public static func gather(_ config: FleetConfig, scheduler: Scheduler, cache: NarInfoCache?,
                              failedBuilders: FailedBuilders? = nil, activity: BuilderActivity? = nil,
                              sample: Int = 2000, recent: Int = 100) async -> Report {
        let trusted = (try? config.trustedKeys()) ?? TrustedKeys([])
        let loads: [Machine: Int]
        if let assessments = try? scheduler.assess(BuildNeeds(system: "builtin")) {
            loads = Dictionary(assessments.map { ($0.machine, $0.load) }, uniquingKeysWith: { a, _ in a })
        } else {
            loads = [:]
        }
        let opener = config.opener
        let machines = await withTaskGroup(of: (Int, MachineStatus).self) { group in
            for (i, m) in config.machines.enumerated() {
                group.addTask {
                    let ping = await Pinger.ping(m.storeUri, opener: opener, roundTrips: 3, failedBuilders: failedBuilders)
                    var status = MachineStatus(machine: m, ping: ping, slotsInUse: loads[m] ?? 0)
                    if let activity {
                        // Recorded under the URI the lookup layer asks (ssh:// is asked as ssh-ng://).
                        status.activity = activity.counts(FleetConfig.lookupURI(m.storeUri)?.description ?? m.storeUri)
                    }
                    if ping.error == nil {
                        do {
                            status.recent = try await recentPaths(m.storeUri, opener: opener, trusted: trusted,
                                                                  sample: sample, recent: recent)
                        } catch {
                            status.sampleError = "\(error)"
                        }
                    }
                    return (i, status)
                }
            }
            var out: [MachineStatus?] = Array(repeating: nil, count: config.machines.count)
            for await (i, s) in group { out[i] = s }
            return out.compactMap { $0 }
        }
        var report = Report(machines: machines, activityWindow: activity?.window)
        if let cache {
            do {
                let s = try cache.stats()
                report.cache = CacheStatus(path: cache.path, fileSize: s.fileSize,
                                           positive: s.stores.reduce(0) { $0 + $1.positive },
                                           negative: s.stores.reduce(0) { $0 + $1.negative },
                                           expired: s.stores.reduce(0) { $0 + $1.expired })
                if let total = activity?.total() {
                    report.cache?.hits = total.cacheHits
                    report.cache?.misses = total.cacheMisses
                }
            } catch {
                report.cacheError = "\(error)"
            }
        }
        return report
    }

    /// The signatures on a store's `recent` most recently registered paths, out of at most
    /// `sample` of its valid paths.
    public static func recentPaths(_ uri: String, opener: StoreOpener, trusted: TrustedKeys,
                                   sample: Int, recent: Int) async throws -> RecentPaths {
        let store = try opener.store(try StoreURI(parsing: uri))
        do {
            let all = try await store.queryAllValidPaths()
            let chosen = Array(all.prefix(sample))
            let infos = try await store.queryPathInfos(chosen).values.compactMap { $0 }
            await store.close()
            return summarize(infos, trusted: trusted, recent: recent)
        } catch {
            await store.close()
            throw error
        }
    }

    /// The newest `recent` of `infos`: how many are unsigned, which keys signed them.
    public static func summarize(_ infos: [PathInfo], trusted: TrustedKeys, recent: Int) -> RecentPaths {
        let newest = infos.sorted { ($0.registrationTime, $0.path.baseName) > ($1.registrationTime, $1.path.baseName) }
            .prefix(recent)
        var counts: [String: Int] = [:]
        var unsigned = 0, inputAddressed = 0
        for info in newest {
            let names = Set(info.sigs.compactMap { $0.split(separator: ":", maxSplits: 1).first.map(String.init) })
            if info.ca == nil { inputAddressed += 1 }
            if names.isEmpty, info.ca == nil { unsigned += 1 }
            for n in names { counts[n, default: 0] += 1 }
        }
        let keys = counts.map { SigningKeyUse(name: $0.key, trusted: trusted.key(named: $0.key) != nil, paths: $0.value) }
            .sorted { ($0.paths, $1.name) > ($1.paths, $0.name) }
        return RecentPaths(sampled: newest.count, inputAddressed: inputAddressed, unsigned: unsigned, keys: keys)
    }
}
