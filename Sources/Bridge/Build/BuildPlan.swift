import NixCore
import NixStore

/// One derivation the build looks at: its parsed form, its output paths, and the outputs
/// someone wants of it.
struct DerivationNode: Sendable {
    var drvPath: StorePath
    var drv: Derivation
    /// Every output's path (input-addressed and fixed-output derivations know them in advance).
    var outputPaths: [String: StorePath]
    var wanted: Set<String>

    var wantedPaths: [StorePath] { wanted.sorted().compactMap { outputPaths[$0] } }
    var allOutputPaths: [StorePath] { outputPaths.keys.sorted().map { outputPaths[$0]! } }

    /// The content address each fixed output must have, from the derivation's own
    /// `outputHash`: a builder's copy is checked against it, not against what the builder says.
    var fixedOutputAddresses: [StorePath: ContentAddress] {
        var out: [StorePath: ContentAddress] = [:]
        for (name, output) in drv.outputs {
            guard case let .caFixed(method, hash) = output, let path = outputPaths[name] else { continue }
            switch method {
            case .flat: out[path] = .fixed(.flat, hash)
            case .nar: out[path] = .fixed(.recursive, hash)
            case .text: out[path] = .text(hash)
            case .git: continue
            }
        }
        return out
    }
}

/// What to do with a derivation: nothing (its wanted outputs are valid), fetch its wanted
/// outputs from the fleet (its inputs are never looked at), or build it.
enum NodeAction: Sendable, Hashable {
    case valid, fetch, build
}

/// Why the derivations cannot be read or planned.
public enum BuildPlanError: Error, Sendable, CustomStringConvertible {
    case unreadableDerivation(String, String)
    case noSuchOutput(drv: String, output: String)
    case floatingOutput(drv: String, output: String)

    public var description: String {
        switch self {
        case let .unreadableDerivation(p, why): return "cannot read derivation '\(p)': \(why)"
        case let .noSuchOutput(d, o): return "derivation '\(d)' does not have an output named '\(o)'"
        case let .floatingOutput(d, o):
            return "output '\(o)' of '\(d)' is content-addressed: building it needs the 'ca-derivations' feature, which nix-bridge does not support"
        }
    }
}

/// The plan: top-down from the targets, a derivation whose wanted outputs are valid locally is
/// done; one whose outputs the fleet holds (trusted) is fetched; only a miss looks at its
/// input derivations, which are planned the same way.
struct BuildPlan: Sendable {
    var nodes: [StorePath: DerivationNode] = [:]
    var actions: [StorePath: NodeAction] = [:]

    var toBuild: [StorePath] { actions.filter { $0.value == .build }.map(\.key).sorted() }
    var toFetch: [StorePath] { actions.filter { $0.value == .fetch }.map(\.key).sorted() }

    /// - Parameters:
    ///   - forced: derivations to build even when the fleet has their outputs (a fetch failed).
    static func make(targets: [(StorePath, Set<String>?)], storeDir: StoreDirectory,
                     read: (StorePath) throws -> Derivation, destination: RemoteStore, lookup: Lookup?,
                     forced: Set<StorePath>) async throws -> BuildPlan {
        var plan = BuildPlan()
        var frontier = targets
        while !frontier.isEmpty {
            var pending: [StorePath] = []
            for (drvPath, outputs) in frontier {
                var node: DerivationNode
                if let n = plan.nodes[drvPath] {
                    node = n
                } else {
                    node = try readNode(drvPath, storeDir: storeDir, read: read)
                }
                let before = node.wanted
                let names = outputs ?? Set(node.outputPaths.keys)
                for name in names where node.drv.outputs[name] == nil {
                    throw BuildPlanError.noSuchOutput(drv: storeDir.print(drvPath), output: name)
                }
                node.wanted.formUnion(names)
                plan.nodes[drvPath] = node
                // Seen before with these outputs: already planned.
                if plan.actions[drvPath] != nil && node.wanted == before { continue }
                if plan.actions[drvPath] == .build { continue }
                if !pending.contains(drvPath) { pending.append(drvPath) }
            }
            frontier = []
            guard !pending.isEmpty else { break }
            let paths = Set(pending.flatMap { plan.nodes[$0]!.wantedPaths })
            let valid = try await destination.queryValidPaths(paths)
            let unknown = paths.subtracting(valid)
            var trusted = Set<StorePath>()
            if let lookup, !unknown.isEmpty {
                let result = await lookup.lookup(unknown.sorted())
                for a in result.answers where a.best != nil { trusted.insert(a.path) }
            }
            for drvPath in pending {
                let node = plan.nodes[drvPath]!
                let wanted = node.wantedPaths
                if wanted.allSatisfy(valid.contains) {
                    plan.actions[drvPath] = .valid
                } else if !forced.contains(drvPath), wanted.allSatisfy({ valid.contains($0) || trusted.contains($0) }) {
                    plan.actions[drvPath] = .fetch
                } else {
                    plan.actions[drvPath] = .build
                    for (input, outs) in node.drv.inputDrvs.sorted(by: { $0.key < $1.key }) {
                        frontier.append((input, outs.outputs))
                    }
                }
            }
        }
        return plan
    }

    static func readNode(_ drvPath: StorePath, storeDir: StoreDirectory,
                         read: (StorePath) throws -> Derivation) throws -> DerivationNode {
        let printed = storeDir.print(drvPath)
        let drv: Derivation
        do { drv = try read(drvPath) } catch {
            throw BuildPlanError.unreadableDerivation(printed, "\(error)")
        }
        var paths: [String: StorePath] = [:]
        do {
            for (name, path) in try drv.outputsAndPaths(in: storeDir) {
                guard let path else { throw BuildPlanError.floatingOutput(drv: printed, output: name) }
                paths[name] = path
            }
        } catch let e as BuildPlanError {
            throw e
        } catch {
            throw BuildPlanError.unreadableDerivation(printed, "\(error)")
        }
        return DerivationNode(drvPath: drvPath, drv: drv, outputPaths: paths, wanted: [])
    }

    /// The input derivations of `drvPath` that this plan builds.
    func buildDependencies(of drvPath: StorePath) -> [StorePath] {
        guard let node = nodes[drvPath] else { return [] }
        return node.drv.inputDrvs.keys.filter { actions[$0] == .build }.sorted()
    }
}
