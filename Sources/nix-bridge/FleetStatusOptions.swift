import ArgumentParser
import Bridge
import NarInfoCache

/// What `status` and `check` both take and do: the machines, the slot-lock directory beside
/// which failures and activity are kept, the narinfo cache, and one probe of the fleet.
struct FleetStatusOptions: ParsableArguments {
    @Option(help: "Where machines' slot locks are kept, as for 'build' (failures and recent activity are kept beside them).")
    var stateDir: String?
    @Option(help: "The narinfo cache file (default: ~/.cache/nix-bridge/narinfo-cache-v1.sqlite).")
    var narinfoCache: String?
    @OptionGroup var nix: NixOptions

    /// The configuration, refusing one without machines.
    func load() throws -> FleetConfig {
        let config = try nix.load()
        if config.machines.isEmpty {
            throw CLIError.failed("no machines configured (nix.conf 'builders', --builders, /etc/nix/machines)")
        }
        return config
    }

    /// A probe of every machine of `config`, then of the narinfo cache.
    struct Prober {
        let config: FleetConfig
        let scheduler: Scheduler
        let cache: NarInfoCache?
        let failed: FailedBuilders?
        let activity: BuilderActivity

        func gather() async -> FleetStatus.Report {
            await FleetStatus.gather(config, scheduler: scheduler, cache: cache, failedBuilders: failed, activity: activity)
        }
    }

    /// Without `readsCache`, the narinfo cache is neither opened nor shown.
    func prober(_ config: FleetConfig, readsCache: Bool = true) -> Prober {
        let slots = stateDir ?? Scheduler.defaultStateDirectory()
        return Prober(config: config,
                      scheduler: Scheduler(machines: config.machines, stateDirectory: slots, warn: { _ in }),
                      cache: readsCache ? try? config.narInfoCache(path: narinfoCache) : nil,
                      failed: config.failedBuilders(besideSlotLocks: slots),
                      activity: config.builderActivity(besideSlotLocks: slots))
    }
}
