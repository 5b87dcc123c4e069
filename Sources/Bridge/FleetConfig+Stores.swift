import Foundation
import NixCore
import NixSigning
import NixStore

/// The stores and keys a command works with, chosen from the configuration as Nix chooses them.
extension FleetConfig {
    /// The store directory paths are printed and parsed in: Nix's default, the only one the
    /// fleet's stores use.
    public var storeDir: StoreDirectory { .default }

    /// The keys of 'secret-key-files', read for the whole command: what built and served
    /// paths are signed with.
    public func signingKeys() throws -> [SecretKey] {
        try settings.secretKeyFiles.map { path throws(KeyError) in try KeyFiles.readSecretKey(path) }
    }

    /// The store paths are fetched or built into: `uri` when given, else Nix's `auto` (the
    /// local daemon when its socket exists, else the local store directly).
    public func destinationStoreURI(_ uri: String?) throws -> StoreURI {
        try StoreURI(parsing: uri ?? (FileManager.default.fileExists(atPath: Self.daemonSocket) ? "daemon" : "local"))
    }

    static let daemonSocket = "/nix/var/nix/daemon-socket/socket"
}
