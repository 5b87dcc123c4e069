import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore

extension FleetConfig {
    /// The stores the lookup layer asks: every configured machine (an `ssh://` machine is
    /// asked over `ssh-ng://`: nix-bridge speaks only the worker protocol), then every
    /// substituter that speaks the worker protocol. Duplicates are asked once.
    public func lookupStoreURIs(extraSubstituters: [String] = []) -> [StoreURI] {
        var out: [StoreURI] = []
        var seen = Set<String>()
        func add(_ text: String) {
            guard let uri = Self.lookupURI(text) else { return }
            if seen.insert(uri.description).inserted { out.append(uri) }
        }
        for m in machines { add(m.storeUri) }
        for s in settings.substituters + extraSubstituters { add(s) }
        return out
    }

    /// Each machine's speed factor, keyed as `Lookup.speedFactors` wants (the URI the lookup
    /// layer asks). A machine listed twice keeps its first entry, as the lookup asks it once.
    public var lookupSpeedFactors: [String: Double] {
        var out: [String: Double] = [:]
        for m in machines {
            guard let uri = Self.lookupURI(m.storeUri), out[uri.description] == nil else { continue }
            out[uri.description] = m.speedFactor
        }
        return out
    }

    /// The worker-protocol URI the lookup layer uses for a configured store, if any.
    static func lookupURI(_ text: String) -> StoreURI? {
        guard var uri = try? StoreURI(parsing: text) else { return nil }
        if uri.scheme == .ssh { uri.scheme = .sshNG }
        guard [.sshNG, .unix, .daemon, .local].contains(uri.scheme), !isBridgeItself(uri) else { return nil }
        return uri
    }

    /// A substituter that runs nix-bridge (`remote-program=nix-bridge`, as a daemon whose
    /// nix.conf nix-bridge shares lists it): asking it would ask ourselves.
    static func isBridgeItself(_ uri: StoreURI) -> Bool {
        guard uri.scheme == .sshNG, let program = uri[parameter: "remote-program"] else { return false }
        return program.split(separator: "/").last?.hasPrefix("nix-bridge") == true
    }

    /// `trusted-public-keys`, parsed.
    public func trustedKeys() throws -> TrustedKeys {
        try TrustedKeys(parsing: settings.trustedPublicKeys.joined(separator: " "))
    }

    /// The narinfo cache with this configuration's TTLs.
    public func narInfoCache(path: String? = nil) throws -> NarInfoCache {
        try NarInfoCache(path: path, positiveTTL: Int64(settings.narinfoCachePositiveTTL),
                         negativeTTL: Int64(settings.narinfoCacheNegativeTTL))
    }

    /// A Lookup over every store `lookupStoreURIs` names, with this configuration's
    /// trusted keys and speed factors; nil when there is no store to ask.
    /// `extraSubstituters` is a space-separated list of store URIs, as on Nix's command line.
    public func lookup(extraSubstituters: String?, sigsNeeded: Int = 1, cache: NarInfoCache?) throws -> Lookup? {
        let uris = lookupStoreURIs(extraSubstituters: extraSubstituters?.split(separator: " ").map(String.init) ?? [])
        guard !uris.isEmpty else { return nil }
        let stores = try uris.map { try opener.store($0) }
        return Lookup(stores: stores, trustedKeys: try trustedKeys(), sigsNeeded: sigsNeeded, cache: cache,
                      storeDir: storeDir, speedFactors: lookupSpeedFactors, failedBuilders: failedBuilders(),
                      activity: builderActivity())
    }

    /// What each builder did recently (`BuilderActivity`, beside the slot locks).
    public func builderActivity(besideSlotLocks slots: String = Scheduler.defaultStateDirectory()) -> BuilderActivity {
        BuilderActivity(directory: BuilderActivity.directory(besideSlotLocks: slots))
    }

    /// The builders that timed out recently (`FailedBuilders`, beside the slot locks), kept
    /// for `bridge-failed-builder-ttl` seconds; nil when that is 0 (nothing is remembered).
    public func failedBuilders(besideSlotLocks slots: String = Scheduler.defaultStateDirectory()) -> FailedBuilders? {
        guard settings.bridgeFailedBuilderTTL > 0 else { return nil }
        return FailedBuilders(directory: FailedBuilders.directory(besideSlotLocks: slots),
                              ttl: .seconds(Int64(clamping: settings.bridgeFailedBuilderTTL)))
    }
}
