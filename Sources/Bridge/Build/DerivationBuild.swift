import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore
import NixWire

/// A machine could not be reached or the connection to it broke: the build may move to
/// another machine.
struct MachineUnreachable: Error, CustomStringConvertible {
    var machine: String
    var reason: String
    /// The connection had served an earlier build: it may just have gone stale.
    var reusedConnection = false
    /// What it was doing when it timed out, if it did (such failures are remembered).
    var timeoutPhase: String?
    var description: String { "cannot build on '\(machine)': \(reason)" }
}

/// Builds one derivation whose inputs are valid in the destination: on a machine, as Nix's
/// build hook does (upload what the builder lacks, BuildDerivation with the input closure as
/// sources, copy the outputs back checked), or in the destination store itself.
struct DerivationBuild: Sendable {
    var node: DerivationNode
    var pool: StorePool
    var destinationURI: StoreURI
    var storeDir: StoreDirectory
    var buildersUseSubstitutes: Bool
    var signingKeys: [SecretKey]
    var cache: NarInfoCache?
    /// Where a build done on a machine is recorded (for `status`).
    var activity: BuilderActivity?
    var temporaryDirectory: String
    var events: @Sendable (BuildEvent) -> Void

    var printedDrv: String { storeDir.print(node.drvPath) }

    /// The paths the builder needs: the closure of the sources and of the wanted outputs of
    /// the input derivations.
    func inputClosure(in local: RemoteStore, read: (StorePath) throws -> Derivation) async throws -> [StorePath: PathInfo] {
        let inputOutputs = try node.drv.inputOutputPaths(in: storeDir, resolve: read)
        let roots = Array(inputOutputs.union(node.drv.inputSrcs))
        let infos = try await Closure.pathInfos(of: roots, in: local, recursive: true)
        if let missing = roots.first(where: { infos[$0] == nil }) {
            throw BuildFailure(drvPath: printedDrv, kind: .other,
                               message: "input '\(storeDir.print(missing))' of '\(printedDrv)' is not valid")
        }
        return infos
    }

    /// The derivation as BuildDerivation sends it. Like build-remote.cc, the input closure
    /// replaces the sources only when there are input derivations (a derivation without any
    /// keeps its own, which content-addressed outputs depend on).
    /// Outputs that cannot be sent fail here, as the derivation's fault, not the machine's.
    func basicDerivation(inputs: Set<StorePath>) throws -> BasicDerivation {
        let basic = BasicDerivation(node.drv, inputClosure: node.drv.inputDrvs.isEmpty ? [] : inputs)
        _ = try basic.outputFields(in: storeDir)
        return basic
    }

    /// Forwards the builder's log lines (STDERR_RESULT build-log-line results, and plain
    /// STDERR_NEXT messages) as events; with `activities`, also the remote daemon's own
    /// activities at info level ("building '...'..."), as Nix's build hook shows them.
    func logHandler(activities: Bool) -> @Sendable (LogEvent) -> Void {
        let drvPath = node.drvPath, events = self.events
        return { event in
            switch event {
            case let .startActivity(_, level, _, text, _, _) where activities && level <= 3 && !text.isEmpty:
                events(.log(drvPath, DaemonError.stripANSI(text) + "..."))
            case let .next(text):
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0) {
                    events(.log(drvPath, DaemonError.stripANSI(String(line))))
                }
            case let .result(_, type, fields) where type == 101:
                if case let .string(line)? = fields.first { events(.log(drvPath, DaemonError.stripANSI(line))) }
            default: break
            }
        }
    }

    /// Builds on `machine`. Connection failures throw `MachineUnreachable`; a failed build
    /// throws `BuildFailure` with build-remote.cc's message; cancelling the task closes the
    /// connections (the remote daemon then kills the build) and throws `CancellationError`.
    func buildRemotely(on machine: Machine, inputs: [StorePath: PathInfo]) async throws {
        let uriText = machine.storeUri
        guard let uri = FleetConfig.lookupURI(uriText) else {
            throw MachineUnreachable(machine: uriText, reason: "not a worker-protocol store")
        }
        let remote = try await pool.take(uri)
        remote.routeLogs(to: logHandler(activities: true))
        do {
            try await withTaskCancellationHandler {
                try await buildRemotely(uriText: uriText, remote: remote.store, inputs: inputs)
            } onCancel: {
                Task { await remote.store.close() }
            }
            await pool.giveBack(remote)
        } catch let e as BuildFailure {
            // The build failed; the connection is fine.
            await pool.giveBack(remote)
            throw e
        } catch let e as StoreError {
            await pool.discard(remote)
            try Task.checkCancellation()
            // Only the builder's connection failing is the machine's fault (not the destination's).
            switch e {
            case .transport, .closed, .closedDuringHandshake, .protocolError, .timedOut:
                guard e.peer == remote.store.uri.description else { fallthrough }
                throw MachineUnreachable(machine: uriText, reason: e.description, reusedConnection: remote.reused,
                                         timeoutPhase: e.timeoutPhase)
            default:
                throw BuildFailure(drvPath: printedDrv, kind: .other,
                                   message: "build of '\(printedDrv)' on '\(uriText)' failed: \(e)")
            }
        } catch {
            await pool.discard(remote)
            try Task.checkCancellation()
            throw error
        }
    }

    /// Runs `body` on a destination connection taken from the pool only for that long (the
    /// pool bounds them; a remote build must not hold one while the machine builds). A
    /// connection that failed under `body` is discarded, a cancelled one closed.
    private func withLocal<T: Sendable>(_ body: (RemoteStore) async throws -> T) async throws -> T {
        let local = try await pool.take(destinationURI)
        do {
            let result = try await withTaskCancellationHandler {
                try await body(local.store)
            } onCancel: {
                Task { await local.store.close() }
            }
            await pool.giveBack(local)
            return result
        } catch let e as BuildFailure {
            await pool.giveBack(local)
            throw e
        } catch {
            await pool.discard(local)
            throw error
        }
    }

    private func buildRemotely(uriText: String, remote: RemoteStore,
                               inputs: [StorePath: PathInfo]) async throws {
        _ = try await remote.handshake()
        // Nix's order: the build is announced on the machine, then its inputs are copied.
        events(.building(node.drvPath, machine: uriText))
        var missing = Set(inputs.keys)
        if !missing.isEmpty {
            missing.subtract(try await remote.queryValidPaths(missing, substitute: buildersUseSubstitutes))
        }
        let copier = PathCopy(temporaryDirectory: temporaryDirectory)
        let events = self.events
        events(.copyingPaths(missing.count, drv: node.drvPath))
        let toUpload = inputs.filter { missing.contains($0.key) }
        if !toUpload.isEmpty {
            try await withLocal { local in
                try await copier.copy(toUpload, from: local, to: remote) { path, size in
                    events(.uploading(path, to: uriText, narSize: size))
                }
            }
        }
        let result = try await remote.buildDerivation(node.drvPath, try basicDerivation(inputs: Set(inputs.keys)))
        guard result.status.isSuccess else {
            throw BuildFailure(drvPath: printedDrv, kind: BuildFailure.kind(of: result),
                               message: "build of '\(printedDrv)' on '\(uriText)' failed: \(DaemonError.stripANSI(result.errorMsg))")
        }
        let outputs = node.allOutputPaths
        let fetched = try await withLocal { local in
            let have = try await local.queryValidPaths(Set(outputs))
            let infos = try await remote.queryPathInfos(outputs.filter { !have.contains($0) })
            var fetched: [StorePath: PathInfo] = [:]
            for (path, info) in infos {
                guard let info else {
                    throw BuildFailure(drvPath: printedDrv, kind: .other,
                                       message: "build of '\(printedDrv)' on '\(uriText)' failed: output '\(storeDir.print(path))' is not valid there")
                }
                fetched[path] = info
            }
            if !fetched.isEmpty { events(.copyingPaths(fetched.count, drv: node.drvPath)) }
            for path in Closure.dependenciesFirst(fetched) {
                events(.copyingOutput(path, from: uriText, narSize: fetched[path]!.narSize))
                try await copier.copy(path, fetched[path]!, from: remote, to: local,
                                      contentAddress: node.fixedOutputAddresses[path])
            }
            try await finish(outputs: outputs, in: local)
            return fetched
        }
        let storeURI = FleetConfig.lookupURI(uriText)?.description ?? uriText
        record(fetched, on: storeURI)
        activity?.recordBuild(storeURI)
        events(.built(node.drvPath, machine: uriText))
    }

    /// Builds in the destination store itself (its daemon runs the builder).
    func buildLocally(inputs: [StorePath: PathInfo]) async throws {
        let local = try await pool.take(destinationURI)
        local.routeLogs(to: logHandler(activities: false))
        events(.building(node.drvPath, machine: nil))
        let result: BuildResult
        do {
            result = try await withTaskCancellationHandler {
                try await local.store.buildDerivation(node.drvPath, try basicDerivation(inputs: Set(inputs.keys)))
            } onCancel: {
                Task { await local.store.close() }
            }
        } catch {
            await pool.discard(local)
            try Task.checkCancellation()
            throw BuildFailure(drvPath: printedDrv, kind: .other, message: "\(error)")
        }
        guard result.status.isSuccess else {
            await pool.giveBack(local)
            throw BuildFailure(drvPath: printedDrv, kind: BuildFailure.kind(of: result), message: DaemonError.stripANSI(result.errorMsg))
        }
        do {
            try await finish(outputs: node.allOutputPaths, in: local.store)
        } catch {
            await pool.discard(local)
            throw error
        }
        await pool.giveBack(local)
        events(.built(node.drvPath, machine: nil))
    }

    /// Signs the outputs with `secret-key-files` (as Nix signs what it builds locally).
    func finish(outputs: [StorePath], in local: RemoteStore) async throws {
        for key in signingKeys {
            do { _ = try await StoreSigner.sign(.paths(outputs, recursive: false), in: local, with: key) } catch {
                throw BuildFailure(drvPath: printedDrv, kind: .other, message: "cannot sign the outputs of '\(printedDrv)': \(error)")
            }
        }
    }

    /// The builder now holds the outputs: the lookup cache learns it (a positive answer
    /// replaces the negative one the plan's lookup left).
    func record(_ infos: [StorePath: PathInfo], on storeURI: String) {
        guard let cache, !infos.isEmpty else { return }
        try? LookupCacheText.register(cache, storeURI, storeDir: storeDir)
        try? cache.insert(storeURI: storeURI, entries: infos.map { path, info in
            (path.hashPart, LookupCacheText.narInfo(info, storeDir: storeDir))
        })
    }
}
