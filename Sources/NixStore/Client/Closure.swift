import NixCore
import NixWire

/// Walks closures over a store, one pipelined batch of QueryPathInfo per level of the
/// reference graph (so a closure costs about its depth in round trips).
public enum Closure {
    /// Infos of `roots` (and with `recursive`, of everything they reference, transitively).
    /// Paths that are not valid are absent from the result.
    public static func pathInfos(of roots: [StorePath], in store: RemoteStore,
                                 recursive: Bool) async throws(StoreError) -> [StorePath: UnkeyedValidPathInfo] {
        var result: [StorePath: UnkeyedValidPathInfo] = [:]
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
}
