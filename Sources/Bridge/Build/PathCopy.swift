import Foundation
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

    /// Copies `infos`' paths in dependency order.
    func copy(_ infos: [StorePath: PathInfo], from source: RemoteStore, to destination: RemoteStore,
              copied: @Sendable (StorePath, UInt64) -> Void = { _, _ in }) async throws {
        for path in Closure.dependenciesFirst(infos) {
            try await copy(path, infos[path]!, from: source, to: destination)
            copied(path, infos[path]!.narSize)
        }
    }

    func copy(_ path: StorePath, _ info: PathInfo, from source: RemoteStore,
              to destination: RemoteStore) async throws {
        let staged = try StagedCopy(directory: temporaryDirectory, path: source.storeDir.print(path), info: info)
        defer { staged.remove() }
        try await source.narFromPath(path) { bytes in try await staged.write(bytes) }
        try await staged.finish()
        let file = staged.file
        try await destination.addToStoreNar(info.copied, dontCheckSigs: true) { frames in
            // The checked NAR, streamed from its file in bounded memory.
            guard let handle = FileHandle(forReadingAtPath: file) else {
                throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: file])
            }
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                try await frames.write([UInt8](chunk))
            }
        }
    }
}

/// A NAR received into a temporary file, checked (`VerifiedNARStream`) against the narHash
/// and narSize its source announced. The file is removed in any case.
final class StagedCopy: @unchecked Sendable {
    let file: String
    private let handle: FileHandle
    private let nar: VerifiedNARStream

    init(directory: String, path: String, info: PathInfo) throws {
        file = directory + "/nix-bridge-copy-\(UUID().uuidString.prefix(12))"
        guard FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o600]),
              let h = FileHandle(forWritingAtPath: file) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file])
        }
        handle = h
        nar = VerifiedNARStream(path: path, narHash: info.narHash, narSize: info.narSize) { [h] in
            try h.write(contentsOf: $0)
        }
    }

    func write(_ bytes: [UInt8]) async throws {
        try await nar.receive(bytes)
    }

    func finish() async throws {
        try await nar.finish()
        try handle.close()
    }

    func remove() {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: file)
    }
}
