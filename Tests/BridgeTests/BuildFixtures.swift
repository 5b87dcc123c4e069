import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore
import NixTransport
import TestSupport
@testable import Bridge

/// FleetBuilders over a `Fleet`, and a record of the events they send.
extension Fleet {
    func machines() throws -> [Machine] {
        try MachinesFile.parse(try String(contentsOfFile: machinesFile, encoding: .utf8), file: machinesFile,
                            localSystem: system).machines
    }

    func opener() throws -> StoreOpener {
        var o = StoreOpener()
        o.sshConfig = try SSHConfig.load(path: sshConfig)
        return o
    }

    /// A FleetBuilder into the client store; `lookupBuilders` (1-based) are asked first.
    func fleetBuilder(maxJobs: UInt32 = 0, lookupBuilders: [Int]? = nil, sign: Bool = true,
                      cache: NarInfoCache? = nil, buildersUseSubstitutes: Bool = false) throws -> FleetBuilder {
        let opener = try opener()
        let machines = try machines()
        let asked = lookupBuilders ?? Array(1...builders.count)
        let stores = try asked.map { try opener.store(try StoreURI(parsing: builder($0).storeURI)) }
        let lookup = Lookup(stores: stores, trustedKeys: try TrustedKeys(parsing: trustedPublicKeys), cache: cache)
        var options = FleetBuilder.Options(maxJobs: maxJobs, buildersUseSubstitutes: buildersUseSubstitutes,
                                           temporaryDirectory: work.path)
        if sign { options.signingKeys = [try KeyFiles.readSecretKey(clientSecretKeyFile)] }
        let state = work.appendingPathComponent("load").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        return FleetBuilder(scheduler: Scheduler(machines: machines, stateDirectory: state), opener: opener,
                            destinationURI: try StoreURI(parsing: clientStoreURI), lookup: lookup, cache: cache,
                            options: options)
    }
}

/// Collects build events (thread-safe) for assertions.
final class BuildEvents: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [BuildEvent] = []

    func add(_ e: BuildEvent) { lock.withLock { events.append(e) } }
    var all: [BuildEvent] { lock.withLock { events } }

    /// Derivation (printed) → machine URI or "local", for each `.building` event.
    var building: [(String, String)] {
        all.compactMap {
            if case let .building(d, m) = $0 { return (StoreDirectory.default.print(d), m ?? "local") }
            return nil
        }
    }

    var logLines: [String] { all.compactMap { if case let .log(_, l) = $0 { return l }; return nil } }
    var uploads: [String] {
        all.compactMap { if case let .uploading(p, to, _) = $0 { return StoreDirectory.default.print(p) + " to " + to }; return nil }
    }
    var disabled: [String] { all.compactMap { if case let .machineDisabled(m, _) = $0 { return m }; return nil } }
}
