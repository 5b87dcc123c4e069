import NixCore
import NixStore

/// Runs a plan's builds in dependency order, independent ones in parallel (the scheduler
/// makes them wait for free slots). Like Nix without `--keep-going`, the first failure
/// stops new builds from starting; the targets then fail as Nix reports them.
struct BuildRun: Sendable {
    var builder: FleetBuilder
    var pool: StorePool
    var plan: BuildPlan
    var targets: [StorePath]
    var events: @Sendable (BuildEvent) -> Void

    func run() async throws {
        let toBuild = plan.toBuild
        guard !toBuild.isEmpty else { return }
        var waitingOn: [StorePath: Set<StorePath>] = [:]
        var dependents: [StorePath: [StorePath]] = [:]
        for d in toBuild {
            let deps = plan.buildDependencies(of: d)
            waitingOn[d] = Set(deps)
            for dep in deps { dependents[dep, default: []].append(d) }
        }
        let topLevel = Set(targets)
        let localSlots = LocalSlots(count: Int(builder.options.maxJobs))
        var done = Set<StorePath>()
        var failed: [StorePath: BuildFailure] = [:]
        var order: [BuildFailure] = []
        var abort: BuildFailure?
        await withTaskGroup(of: (StorePath, Outcome).self) { group in
            func start(_ d: StorePath) {
                group.addTask {
                    do {
                        try await self.buildOne(d, localSlots: localSlots)
                        return (d, .built)
                    } catch let f as BuildFailure {
                        return (d, .failed(f))
                    } catch is CancellationError {
                        return (d, .cancelled)
                    } catch {
                        let p = self.builder.storeDir.print(d)
                        return (d, .failed(BuildFailure(drvPath: p, kind: .other, message: "\(error)")))
                    }
                }
            }
            for d in toBuild where waitingOn[d]!.isEmpty { start(d) }
            var stopped = false
            for await (d, outcome) in group {
                switch outcome {
                case .cancelled:
                    continue
                case let .failed(failure):
                    failed[d] = failure
                    order.append(failure)
                    if failure.abortsBuild, abort == nil { abort = failure }
                    if !topLevel.contains(d) { events(.failed(failure)) }
                    // Without --keep-going Nix stops the other builds at the first failure.
                    stopped = true
                    group.cancelAll()
                case .built:
                    done.insert(d)
                    guard !stopped else { continue }
                    for next in dependents[d] ?? [] {
                        waitingOn[next]!.remove(d)
                        if waitingOn[next]!.isEmpty { start(next) }
                    }
                }
            }
        }
        // Cancelled (an interrupted command): the builds that were stopped are not built.
        try Task.checkCancellation()
        if let abort {
            throw BuildError(message: abort.message, exitStatus: 1, failures: order)
        }
        guard !failed.isEmpty else { return }
        // Derivations that never started because an input failed, bottom-up (Nix's
        // DependencyFailed, printed for every goal that has waiters).
        var depFailed: [StorePath: BuildFailure] = [:]
        func failedInputs(_ d: StorePath) -> Int {
            plan.buildDependencies(of: d).filter { failed[$0] != nil || hasFailedInput($0) }.count
        }
        func hasFailedInput(_ d: StorePath) -> Bool {
            plan.buildDependencies(of: d).contains { failed[$0] != nil || hasFailedInput($0) }
        }
        for d in toBuild where !done.contains(d) && failed[d] == nil {
            let n = failedInputs(d)
            guard n > 0 else { continue }
            let f = BuildFailure(drvPath: builder.storeDir.print(d), kind: .dependencyFailed,
                                 message: "\(n) dependencies of derivation '\(builder.storeDir.print(d))' failed to build")
            depFailed[d] = f
            if !topLevel.contains(d) { events(.failed(f)) }
        }
        // As Store::buildPaths: every target not built counts as failed (one stopped because
        // another failed too); one failed target ends with its own error, several with
        // "build of ... failed" after their errors.
        let failedTargets = Set(targets.filter { plan.actions[$0] == .build && !done.contains($0) })
            .sorted { builder.storeDir.print($0) < builder.storeDir.print($1) }
        let status = BuildError.exitStatus(order.map(\.kind))
        let all = order + depFailed.values.sorted { $0.drvPath < $1.drvPath }
        if failedTargets.count == 1, let f = failed[failedTargets[0]] ?? depFailed[failedTargets[0]] {
            throw BuildError(message: f.message, exitStatus: status, failures: all)
        }
        for t in targets where failedTargets.contains(t) {
            if let f = failed[t] ?? depFailed[t] { events(.failed(f)) }
        }
        let shown = (failedTargets.isEmpty ? Array(failed.keys).sorted() : failedTargets)
            .map { "'\(builder.storeDir.print($0))'" }.joined(separator: ", ")
        throw BuildError(message: "build of \(shown) failed", exitStatus: status, failures: all)
    }

    /// Builds one derivation: on the machine the scheduler gives, moving to another when one
    /// cannot be reached; locally when none can ever take it and `max-jobs` allows.
    func buildOne(_ drvPath: StorePath, localSlots: LocalSlots) async throws {
        let node = plan.nodes[drvPath]!
        let b = builder
        let job = DerivationBuild(node: node, pool: pool, destinationURI: b.destinationURI, storeDir: b.storeDir,
                                  buildersUseSubstitutes: b.options.buildersUseSubstitutes,
                                  signingKeys: b.options.signingKeys, cache: b.cache,
                                  activity: BuilderActivity(directory: BuilderActivity.directory(besideSlotLocks: b.scheduler.stateDirectory)),
                                  temporaryDirectory: b.options.temporaryDirectory, events: events)
        let local = try await pool.take(b.destinationURI)
        let inputs: [StorePath: PathInfo]
        do {
            inputs = try await job.inputClosure(in: local.store, read: b.readDerivation)
            await pool.giveBack(local)
        } catch {
            await pool.discard(local)
            throw error
        }
        let needs: BuildNeeds
        do { needs = try BuildNeeds(node.drv) } catch {
            throw BuildFailure(drvPath: job.printedDrv, kind: .other, message: "\(error)")
        }
        if b.options.buildsLocally(node.drv, needs: needs) {
            try await localSlots.run { try await job.buildLocally(inputs: inputs) }
            return
        }
        while true {
            guard let slot = try await b.scheduler.acquire(needs) else {
                guard b.options.maxJobs > 0 else {
                    // As Nix: the hook's hint as it declines, then the worker's error (the
                    // CLI prints it after "error: ", its later lines indented).
                    let refusal = b.scheduler.noMachineFound(for: needs, drvPath: node.drvPath)
                    if let hint = refusal.hint { events(.log(node.drvPath, hint)) }
                    throw BuildFailure(drvPath: job.printedDrv, kind: .other, message: refusal.message, abortsBuild: true)
                }
                try await localSlots.run { try await job.buildLocally(inputs: inputs) }
                return
            }
            do {
                try await job.buildRemotely(on: slot.machine, inputs: inputs)
                slot.release()
                return
            } catch let e as MachineUnreachable where e.reusedConnection {
                // A connection kept from an earlier build went stale: try a fresh one.
                slot.release()
            } catch let e as MachineUnreachable {
                slot.release()
                b.scheduler.disable(slot.machine, reason: e.reason)
                if let phase = e.timeoutPhase {
                    b.scheduler.failedBuilders?.record(Scheduler.failureKey(slot.machine), phase: phase, message: e.reason)
                }
                events(.machineDisabled(slot.machine.storeUri, reason: e.reason))
            } catch {
                slot.release()
                throw error
            }
        }
    }
}

/// How one build ended.
enum Outcome: Sendable {
    case built
    case failed(BuildFailure)
    /// Stopped because another build failed.
    case cancelled
}

/// Bounds builds in the destination store by `max-jobs`.
actor LocalSlots {
    private var free: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { free = max(1, count) }

    func run(_ body: @Sendable () async throws -> Void) async throws {
        if free > 0 {
            free -= 1
        } else {
            await withCheckedContinuation { waiters.append($0) }
        }
        defer {
            if waiters.isEmpty { free += 1 } else { waiters.removeFirst().resume() }
        }
        // Stopped while waiting (another build failed): do not start.
        try Task.checkCancellation()
        try await body()
    }
}
