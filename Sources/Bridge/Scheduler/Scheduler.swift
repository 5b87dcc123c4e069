import Foundation
import NixCore
import Synchronization

/// Chooses the remote machine for each build the way Nix 2.8's build hook (`build-remote`)
/// does, sharing machine load with every other nix-bridge process through lock files. The
/// choice itself is `MachineChoice`'s (pure); this type owns the slot locks.
///
/// A machine is eligible when it builds for the derivation's system (or the system is
/// `builtin`), offers every required feature (supported or mandatory) and all its mandatory
/// features are required. Among eligible machines with a free slot, the lowest
/// load / speed factor wins; ties go to the higher speed factor, then the lower load, then
/// the earlier machine in the file. (Nix 2.8 divides integers there; later Nix, with
/// fractional speed factors, divides exactly, as this does.)
///
/// Slots follow Nix's `current-load` scheme: a machine with `maxJobs` N has lock files
/// `DIR/URI-0` ... `DIR/URI-(N-1)` (the store URI with `/` as `_`); a build holds one
/// with `flock` for its duration, and a machine's load is its number of locked slots. Choice
/// happens under `DIR/main-lock`, so N processes never run more than `maxJobs` builds on a
/// machine. Pointing two tools at the same directory makes them share the load.
public final class Scheduler: Sendable {
    /// The machines, in file order.
    public let machines: [Machine]
    /// The directory of slot lock files (Nix's `current-load`).
    public let stateDirectory: String
    /// How long `acquire` sleeps between looks while every eligible machine is busy.
    public let pollInterval: Duration
    private let disabledReasons = Mutex<[Machine: String]>([:])
    private let warn: @Sendable (String) -> Void
    /// Machines that timed out recently, in this or another process: declined as disabled
    /// until they are to be tried again.
    public let failedBuilders: FailedBuilders?

    /// `stateDirectory` holds the slot locks (see `defaultStateDirectory`); it is created
    /// when first needed. `warn` receives Nix's warning when a machine is disabled
    /// (default: printed on standard error).
    public init(machines: [Machine], stateDirectory: String, pollInterval: Duration = .milliseconds(100),
                failedBuilders: FailedBuilders? = nil,
                warn: @escaping @Sendable (String) -> Void = Scheduler.printToStandardError) {
        self.failedBuilders = failedBuilders
        self.machines = machines
        self.stateDirectory = stateDirectory
        self.pollInterval = pollInterval
        self.warn = warn
    }

    /// `$NIX_BRIDGE_STATE_DIR/current-load`, else `$XDG_STATE_HOME/nix-bridge/current-load`,
    /// else `~/.local/state/nix-bridge/current-load` (Nix keeps its own in
    /// `/nix/var/nix/current-load`; `NIX_BRIDGE_STATE_DIR=/nix/var/nix` shares Nix's slots).
    public static func defaultStateDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment["NIX_BRIDGE_STATE_DIR"], !dir.isEmpty { return dir + "/current-load" }
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") { return xdg + "/nix-bridge/current-load" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.local/state/nix-bridge/current-load"
    }

    /// Every machine's answer for `needs` right now, in file order, and which one `acquire`
    /// would pick. Reading the slots takes the main lock (held only for moments).
    public func assess(_ needs: BuildNeeds) throws(LockFileError) -> [MachineAssessment] {
        let main = try openMainLock()
        defer { LockFiles.close(main) }
        try LockFiles.lock(main, path: mainLockPath)
        return try survey(needs, keepPick: false).assessments
    }

    /// Takes a slot on the best machine for `needs`, waiting (polling the locks, sleeping
    /// between looks) while every eligible machine is busy. Returns nil when no machine can
    /// ever take the build in this run (then `noMachineFound` gives Nix's error). `onWait`
    /// runs once, when the first look finds every eligible machine busy (Nix then prints
    /// `waitingMessage`). Throws `CancellationError` when the task is cancelled while waiting.
    public func acquire(_ needs: BuildNeeds, onWait: (@Sendable () -> Void)? = nil) async throws -> Slot? {
        var waited = false
        while true {
            try Task.checkCancellation()
            let main = try openMainLock()
            let locked: Bool
            do { locked = try LockFiles.tryLock(main, path: mainLockPath) } catch {
                LockFiles.close(main)
                throw error
            }
            guard locked else {
                LockFiles.close(main)
                // Another chooser holds it for a moment only.
                try await Task.sleep(for: .milliseconds(2))
                continue
            }
            let result: Survey
            do { result = try survey(needs, keepPick: true) } catch {
                LockFiles.close(main)
                throw error
            }
            LockFiles.close(main)
            if let slot = result.slot { return slot }
            if result.assessments.allSatisfy({ $0.decline?.isPermanent ?? false }) { return nil }
            if !waited {
                waited = true
                onWait?()
            }
            try await Task.sleep(for: pollInterval)
        }
    }

    /// Takes `machine` out of this run after it failed to connect, as Nix's hook does, and
    /// reports Nix's text: `cannot build on 'URI': REASON`.
    @discardableResult
    public func disable(_ machine: Machine, reason: String) -> String {
        disabledReasons.withLock { $0[machine] = reason }
        let text = "cannot build on '\(machine.storeUri)': \(reason)"
        warn(text)
        return text
    }

    /// What Nix 2.8 prints while a build waits for a busy machine (DRV is the full path).
    public static func waitingMessage(drvPath: String) -> String {
        "waiting for a machine to build '\(drvPath)'..."
    }

    /// The machines `failedBuilders` remembers, with why and until when.
    func remembered() -> [Machine: String] {
        guard let failedBuilders else { return [:] }
        var out: [Machine: String] = [:]
        for m in machines {
            if let f = failedBuilders.remembered(Self.failureKey(m)) { out[m] = f.summary() }
        }
        return out
    }

    /// The name a machine's failures are remembered under: the store URI that lookups and
    /// builds open (`ssh://` machines are reached over `ssh-ng://`).
    public static func failureKey(_ m: Machine) -> String {
        FleetConfig.lookupURI(m.storeUri)?.description ?? m.storeUri
    }

    /// Why `machine` was disabled, or nil.
    public func disabledReason(_ machine: Machine) -> String? { disabledReasons.withLock { $0[machine] } }

    /// Nix's error when no machine can take `needs` (the build hook's hint, then the
    /// worker's "unable to start any build").
    public func noMachineFound(for needs: BuildNeeds, drvPath: StorePath?) -> NoMachineFound {
        NoMachineFound(drvPath: drvPath, needs: needs, machines: machines)
    }

    @Sendable public static func printToStandardError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    // MARK: - Choosing

    struct Survey {
        var assessments: [MachineAssessment]
        var slot: Slot?
    }

    var mainLockPath: String { stateDirectory + "/main-lock" }

    private func openMainLock() throws(LockFileError) -> Int32 {
        LockFiles.makeDirectory(stateDirectory)
        return try LockFiles.open(mainLockPath)
    }

    /// Probes every machine's slots (caller holds the main lock) and lets `MachineChoice`
    /// choose. With `keepPick`, the chosen machine's free slot stays locked and is returned;
    /// every other probe is undone.
    private func survey(_ needs: BuildNeeds, keepPick: Bool) throws(LockFileError) -> Survey {
        let declines = MachineChoice.declines(machines, needs, disabled: disabledReasons.withLock { $0 }.merging(remembered()) { a, _ in a })
        var held: [Int: (slot: Int, fd: Int32)] = [:]
        defer { for h in held.values { LockFiles.close(h.fd) } }
        var slots: [MachineChoice.Slots] = []
        for (i, m) in machines.enumerated() {
            let probe = try probeSlots(m, hold: declines[i] == nil)
            if let free = probe.free { held[i] = free }
            slots.append(MachineChoice.Slots(load: probe.load, hasFree: probe.free != nil))
        }
        let (assessments, pick) = MachineChoice.choose(machines, declines: declines, slots: slots)
        guard keepPick, let pick, let free = held.removeValue(forKey: pick) else {
            return Survey(assessments: assessments, slot: nil)
        }
        LockFiles.touch(free.fd)
        let m = machines[pick]
        let path = LockFiles.slotPath(directory: stateDirectory, storeUri: m.storeUri, slot: free.slot)
        return Survey(assessments: assessments, slot: Slot(machine: m, number: free.slot, lockPath: path, fd: free.fd))
    }

    /// Counts `machine`'s locked slots; with `hold`, keeps its first free slot locked.
    private func probeSlots(_ m: Machine, hold: Bool) throws(LockFileError) -> (load: Int, free: (slot: Int, fd: Int32)?) {
        var load = 0
        var free: (slot: Int, fd: Int32)?
        for slot in 0..<Int(m.maxJobs) {
            let path = LockFiles.slotPath(directory: stateDirectory, storeUri: m.storeUri, slot: slot)
            let fd = try LockFiles.open(path)
            let taken: Bool
            do { taken = try LockFiles.tryLock(fd, path: path) } catch {
                LockFiles.close(fd)
                if let free { LockFiles.close(free.fd) }
                throw error
            }
            if taken && free == nil && hold { free = (slot, fd) } else { LockFiles.close(fd) }
            if !taken { load += 1 }
        }
        return (load, free)
    }
}
