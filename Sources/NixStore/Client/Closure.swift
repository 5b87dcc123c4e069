import NixCore
import NixWire

/// Walks closures over a store, one pipelined batch of QueryPathInfo per level of the
/// reference graph (so a closure costs about its depth in round trips).
public enum Closure {
    /// Infos of `roots` (and with `recursive`, of everything they reference, transitively).
    /// Paths that are not valid are absent from the result.
    public static func pathInfos(of roots: [StorePath], in store: RemoteStore,
                                 recursive: Bool) async throws(StoreError) -> [StorePath: PathInfo] {
        var result: [StorePath: PathInfo] = [:]
        var seen = Set(roots)
        var frontier = Array(seen)
        while !frontier.isEmpty {
            let answers = try await store.queryPathInfos(frontier)
            var next: [StorePath] = []
            for (path, info) in answers {
                guard let info else { continue }
                result[path] = info
                guard recursive else { continue }
                for r in info.references where seen.insert(r).inserted { next.append(r) }
            }
            frontier = next
        }
        return result
    }

    /// The paths in the order Nix's path commands (`nix path-info`, `nix store sign`) use:
    /// each path after the paths it references (Nix's `topoSortPaths`, reversed), ties in
    /// path order. References outside `infos` are ignored.
    public static func dependenciesFirst(_ infos: [StorePath: PathInfo]) -> [StorePath] {
        var order: [StorePath] = []
        order.reserveCapacity(infos.count)
        var visited = Set<StorePath>()
        // Iterative depth-first post-order: reference chains can be thousands deep.
        var stack: [(path: StorePath, children: [StorePath], next: Int)] = []
        func children(_ p: StorePath) -> [StorePath] {
            (infos[p]?.references ?? []).filter { $0 != p && infos[$0] != nil }.sorted()
        }
        for root in infos.keys.sorted() where visited.insert(root).inserted {
            stack.append((root, children(root), 0))
            while !stack.isEmpty {
                let top = stack.count - 1
                if stack[top].next < stack[top].children.count {
                    let child = stack[top].children[stack[top].next]
                    stack[top].next += 1
                    if visited.insert(child).inserted { stack.append((child, children(child), 0)) }
                } else {
                    order.append(stack.removeLast().path)
                }
            }
        }
        return order
    }
}
