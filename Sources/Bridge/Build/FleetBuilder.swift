import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore

/// `nix-bridge build`: makes derivation outputs valid in a destination store, looking them
/// up on the fleet first. A hit is fetched (verified) and its inputs are never looked at; a
/// miss resolves its input derivations the same way, then is built on the machine the
/// scheduler picks, independent builds in parallel (the scheduler bounds them by the
/// machines' `maxJobs`). A derivation no machine can take is built by the destination
/// store when `maxJobs` > 0, and fails with the scheduler's "Failed to find a machine"
/// text otherwise.
public struct FleetBuilder: Sendable {
    /// Destination connections a run may open beyond `max-jobs` (for copying to and from
    /// the machines).
    static let destinationConnections = 4

    public struct Options: Sendable {
        /// `max-jobs`: 0 forbids local builds.
        public var maxJobs: UInt32
        /// `builders-use-substitutes`: builders substitute missing inputs themselves.
        public var buildersUseSubstitutes: Bool
        /// `secret-key-files`, read: every output that arrives is signed with them.
        public var signingKeys: [SecretKey]
        /// Where NARs are staged while they are checked.
        public var temporaryDirectory: String
        /// What the local store builds: `system` plus `extra-platforms`, and `system-features`
        /// (for `preferLocalBuild`, as Nix's `canBuildLocally`). Nil: never prefer local.
        public var localPlatforms: Set<String>?
        public var localSystemFeatures: Set<String>

        public init(maxJobs: UInt32 = 1, buildersUseSubstitutes: Bool = false, signingKeys: [SecretKey] = [],
                    temporaryDirectory: String = FileManager.default.temporaryDirectory.path,
                    localPlatforms: Set<String>? = nil, localSystemFeatures: Set<String> = []) {
            self.maxJobs = maxJobs
            self.buildersUseSubstitutes = buildersUseSubstitutes
            self.signingKeys = signingKeys
            self.temporaryDirectory = temporaryDirectory
            self.localPlatforms = localPlatforms
            self.localSystemFeatures = localSystemFeatures
        }

        /// Nix's `willBuildLocally`: builtin derivations always; `preferLocalBuild` ones when
        /// the local store can build them (`canBuildLocally`).
        func buildsLocally(_ drv: Derivation, needs: BuildNeeds) -> Bool {
            if drv.isBuiltin { return true }
            guard (try? drv.preferLocalBuild()) == true, maxJobs > 0, let localPlatforms else { return false }
            return localPlatforms.contains(drv.system) && needs.requiredFeatures.isSubset(of: localSystemFeatures)
        }
    }

    public var scheduler: Scheduler
    public var opener: StoreOpener
    /// Where outputs go and where the derivations and inputs are.
    public var destinationURI: StoreURI
    /// The fleet's stores, or nil when there is nothing to ask (then everything is built).
    public var lookup: Lookup?
    public var cache: NarInfoCache?
    public var options: Options
    public var storeDir: StoreDirectory
    /// Reads a derivation of the destination store (`readLocalDerivation` by default).
    public var readDerivation: @Sendable (StorePath) throws -> Derivation

    public init(scheduler: Scheduler, opener: StoreOpener, destinationURI: StoreURI, lookup: Lookup?,
                cache: NarInfoCache? = nil, options: Options = Options(), storeDir: StoreDirectory = .default,
                readDerivation: (@Sendable (StorePath) throws -> Derivation)? = nil) {
        self.scheduler = scheduler
        self.opener = opener
        self.destinationURI = destinationURI
        self.lookup = lookup
        self.cache = cache
        self.options = options
        self.storeDir = storeDir
        self.readDerivation = readDerivation ?? Self.localDerivationReader(for: destinationURI, storeDir: storeDir)
    }

    /// Reads `.drv` files from the file system, under the store's `root` (a chroot store
    /// `local?root=DIR`) when it has one.
    public static func localDerivationReader(for uri: StoreURI, storeDir: StoreDirectory) -> @Sendable (StorePath) throws -> Derivation {
        let root = uri[parameter: "root"] ?? ""
        return { path in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + storeDir.print(path))))
            return try Derivation(parsing: bytes, name: Derivation.name(fromDrvPath: path), storeDirectory: storeDir)
        }
    }

    /// Builds or fetches `targets` (`DRV^out`, `DRV^*`, or a plain path to fetch) and returns
    /// what each became, in order. Throws `BuildError` (with Nix's exit status) when
    /// derivations fail, other errors when the work cannot start.
    public func build(_ targets: [DerivedPath], events: @escaping @Sendable (BuildEvent) -> Void = { _ in }) async throws -> [BuiltTarget] {
        var drvTargets: [(StorePath, Set<String>?)] = []
        var opaque: [StorePath] = []
        for t in targets {
            switch t {
            case let .opaque(p) where p.isDerivation: drvTargets.append((p, nil))
            case let .opaque(p): opaque.append(p)
            case let .built(.opaque(drv), .all): drvTargets.append((drv, nil))
            case let .built(.opaque(drv), .names(names)): drvTargets.append((drv, Set(names)))
            case .built: throw BuildPlanError.unreadableDerivation(t.render(in: storeDir), "dynamic derivations are not supported")
            }
        }
        let destination = try opener.store(destinationURI)
        defer { Task { await destination.close() } }
        let substituter = lookup.map { Substituter(lookup: $0, destination: destination) }
        if !opaque.isEmpty {
            guard let substituter else { throw NothingToFetchFrom("no stores to fetch '\(storeDir.print(opaque[0]))' from") }
            _ = try await substituter.substitute(opaque) { events(.substitute($0)) }
        }
        var forced = Set<StorePath>()
        var plan: BuildPlan
        // A fetch that fails turns its derivation into a build: plan again with it forced.
        while true {
            plan = try await BuildPlan.make(targets: drvTargets, storeDir: storeDir, read: readDerivation,
                                            destination: destination, lookup: lookup, forced: forced)
            events(.planned(build: plan.toBuild, fetch: plan.toFetch))
            guard let substituter, !plan.toFetch.isEmpty else { break }
            // All hits in one go (one plan, one "these paths will be fetched"); when that
            // fails, each derivation's outputs alone, to find which ones must be built.
            do {
                _ = try await substituter.substitute(plan.toFetch.flatMap { plan.nodes[$0]!.wantedPaths }) { events(.substitute($0)) }
                break
            } catch {
                var failedFetch = false
                for drv in plan.toFetch {
                    do {
                        _ = try await substituter.substitute(plan.nodes[drv]!.wantedPaths) { events(.substitute($0)) }
                    } catch {
                        events(.fetchFailed(drv: drv, error: "\(error)"))
                        forced.insert(drv)
                        failedFetch = true
                    }
                }
                if !failedFetch { break }
            }
        }
        // Local builds hold a destination connection each (up to max-jobs); remote builds
        // take one only to copy inputs and outputs. More would only queue in its daemon.
        let pool = StorePool(opener: opener, limits: [destinationURI: Int(options.maxJobs) + Self.destinationConnections])
        do {
            try await BuildRun(builder: self, pool: pool, plan: plan, targets: drvTargets.map(\.0), events: events).run()
            await pool.closeAll()
        } catch {
            await pool.closeAll()
            throw error
        }
        return targets.map { t in
            switch t {
            case let .opaque(p) where p.isDerivation:
                return BuiltTarget(target: t, drvPath: p, outputs: plan.nodes[p]!.outputPaths)
            case let .opaque(p):
                return BuiltTarget(target: t, drvPath: nil, outputs: [:], path: p)
            case let .built(.opaque(drv), .all):
                return BuiltTarget(target: t, drvPath: drv, outputs: plan.nodes[drv]!.outputPaths)
            case let .built(.opaque(drv), .names(names)):
                return BuiltTarget(target: t, drvPath: drv, outputs: plan.nodes[drv]!.outputPaths.filter { names.contains($0.key) })
            case .built:
                return BuiltTarget(target: t, drvPath: nil, outputs: [:])
            }
        }
    }
}

/// What one target became: its outputs by name (or, for a plain path, the path).
public struct BuiltTarget: Sendable {
    public var target: DerivedPath
    public var drvPath: StorePath?
    public var outputs: [String: StorePath]
    /// A plain store path target.
    public var path: StorePath?

    public init(target: DerivedPath, drvPath: StorePath?, outputs: [String: StorePath], path: StorePath? = nil) {
        self.target = target
        self.drvPath = drvPath
        self.outputs = outputs
        self.path = path
    }

    /// The paths, outputs in name order.
    public var paths: [StorePath] { path.map { [$0] } ?? outputs.keys.sorted().map { outputs[$0]! } }
}

/// A plain failure to start (nothing to fetch from).
struct NothingToFetchFrom: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
