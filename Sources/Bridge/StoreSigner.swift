import NixCore
import NixSigning
import NixStore

/// Why signing paths in a store failed, naming the store.
public enum StoreSignError: Error, Sendable, CustomStringConvertible {
    /// The path is not valid in the store (Nix's own words).
    case notValid(path: String, store: String)
    /// The daemon refused AddSignatures: we are not one of its trusted users.
    case notPrivileged(store: String)
    /// The path's info cannot be fingerprinted (no NAR size, not SHA-256).
    case fingerprint(store: String, FingerprintError)
    case store(StoreError)

    public var description: String {
        switch self {
        case let .notValid(path, _): return "path '\(path)' is not valid"
        case let .notPrivileged(store):
            return "you are not privileged to add signatures to '\(store)' (the remote user must be in the store's 'trusted-users')"
        case let .fingerprint(store, e): return "cannot sign a path of '\(store)': \(e)"
        case let .store(e): return e.description
        }
    }
}

/// Signs paths in a store through the worker protocol, as `nix store sign --store URI` does:
/// each path gets this key's signature unless it has it already.
public enum StoreSigner {
    /// Which paths to sign.
    public enum Selection: Sendable {
        /// These paths (with `recursive`, their closures).
        case paths([StorePath], recursive: Bool)
        /// Every valid path of the store.
        case all
    }

    /// Adds `key`'s signature to the selected paths that lack it; returns how many were added.
    /// Every path is checked to be valid first (AddSignatures on an invalid path crashes a
    /// Nix 2.8 daemon), and nothing is signed if one is not.
    public static func sign(_ selection: Selection, in store: RemoteStore, with key: SecretKey) async throws(StoreSignError) -> Int {
        let name = store.uri.description
        let dir = store.storeDir
        var infos: [StorePath: PathInfo]
        do {
            switch selection {
            case let .paths(roots, recursive):
                infos = try await Closure.pathInfos(of: roots, in: store, recursive: recursive)
                if let missing = roots.first(where: { infos[$0] == nil }) {
                    throw StoreSignError.notValid(path: dir.print(missing), store: name)
                }
            case .all:
                let all = try await store.queryAllValidPaths()
                infos = try await Closure.pathInfos(of: Array(all), in: store, recursive: false)
            }
        } catch let e as StoreSignError {
            throw e
        } catch {
            throw wrap(error, store: name)
        }
        var toAdd: [(StorePath, String)] = []
        for (path, info) in infos {
            let sig: String
            do { sig = try key.sign(info, storeDir: dir).description } catch {
                throw .fingerprint(store: name, error)
            }
            if !info.sigs.contains(sig) { toAdd.append((path, sig)) }
        }
        // Pipelined: the requests go out together, so N paths cost about one round trip.
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (path, sig) in toAdd {
                    group.addTask { try await store.addSignatures(path, [sig]) }
                }
                try await group.waitForAll()
            }
        } catch {
            throw wrap(error, store: name)
        }
        return toAdd.count
    }

    static func wrap(_ error: any Error, store: String) -> StoreSignError {
        guard let e = error as? StoreError else { return .store(.transport(peer: store, "\(error)")) }
        if case let .daemon(_, d) = e, d.displayMessage.contains("not privileged to add signatures") {
            return .notPrivileged(store: store)
        }
        return .store(e)
    }
}
