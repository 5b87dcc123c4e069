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

    /// - Parameter contentAddress: what the path must hold whatever its source says (a
    ///   fixed-output derivation's own `outputHash`); it is also what the destination records.
    func copy(_ path: StorePath, _ info: PathInfo, from source: RemoteStore,
              to destination: RemoteStore, contentAddress: ContentAddress? = nil) async throws {
        var checked = info
        if let contentAddress { checked.ca = contentAddress }
        let staged = try StagedCopy(directory: temporaryDirectory, path: path, storeDir: source.storeDir, info: checked)
        defer { staged.remove() }
        try await source.narFromPath(path) { bytes in try await staged.write(bytes) }
        try await staged.finish()
        try await destination.addToStoreNar(checked.copied, dontCheckSigs: true) { frames in
            // The checked NAR, streamed from its file in bounded memory.
            while let chunk = try staged.read(upTo: 1 << 20) {
                try await frames.write(chunk)
            }
        }
    }
}

/// A NAR received into a temporary file, checked (`VerifiedNARStream`) against the narHash,
/// narSize and content address its source announced. The file is unlinked as soon as it is
/// open, so nothing is left in the directory however the process ends.
final class StagedCopy: @unchecked Sendable {
    private let handle: FileHandle
    private let nar: VerifiedNARStream

    init(directory: String, path storePath: StorePath, storeDir: StoreDirectory, info: PathInfo) throws {
        let printed = storeDir.print(storePath)
        let file = directory + "/nix-bridge-copy-\(UUID().uuidString.prefix(12))"
        let fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file,
                                                            NSUnderlyingErrorKey: POSIXError(.init(rawValue: errno) ?? .EIO)])
        }
        unlink(file)
        let h = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        handle = h
        nar = VerifiedNARStream(path: printed, narHash: info.narHash, narSize: info.narSize,
                                contentAddress: info.ca.map { ContentAddressVerifier(path: storePath, contentAddress: $0, storeDir: storeDir) }) { [h] in
            try h.write(contentsOf: $0)
        }
    }

    func write(_ bytes: [UInt8]) async throws {
        try await nar.receive(bytes)
    }

    /// Checks the whole NAR, then rewinds the file for `read`.
    func finish() async throws {
        try await nar.finish()
        try handle.seek(toOffset: 0)
    }

    /// The next checked bytes, or nil at the end (after `finish`).
    func read(upTo count: Int) throws -> [UInt8]? {
        guard let chunk = try handle.read(upToCount: count), !chunk.isEmpty else { return nil }
        return [UInt8](chunk)
    }

    func remove() {
        try? handle.close()
    }
}
