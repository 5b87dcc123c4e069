import NixCore
import NixStore
import NixWire

/// Copies store paths between two stores through the worker protocol: each NAR is staged in
/// a temporary file while its hash and size are checked against the source's path info, and
/// only then added to the destination (which checks them again and registers nothing on a
/// mismatch). Signatures travel with the path; the destination does not check them (we
/// decided to trust the source, as Nix's `copyPaths(..., NoCheckSigs)` for build hooks).
struct PathCopy: Sendable {
    var temporaryDirectory: String

    /// Copies `paths` (whose infos `infos` holds) in dependency order.
    func copy(_ infos: [StorePath: UnkeyedValidPathInfo], from source: RemoteStore, to destination: RemoteStore,
              copied: @Sendable (StorePath, UInt64) -> Void = { _, _ in }) async throws {
        for path in Closure.dependenciesFirst(infos) {
            try await copy(path, infos[path]!, from: source, to: destination)
            copied(path, infos[path]!.narSize)
        }
    }

    func copy(_ path: StorePath, _ info: UnkeyedValidPathInfo, from source: RemoteStore,
              to destination: RemoteStore) async throws {
        let staged = try StagedNAR(directory: temporaryDirectory, expected: info.pathInfo(path))
        defer { staged.remove() }
        try await source.narFromPath(path) { bytes in try staged.write(bytes) }
        try staged.finish()
        var unkeyed = info
        unkeyed.registrationTime = 0
        unkeyed.ultimate = false
        try await destination.addToStoreNar(ValidPathInfo(path: path, info: unkeyed), narFile: staged.path,
                                            dontCheckSigs: true)
    }
}
