import NixCore
import NixStore
import NixTransport
import NixWire

/// What serving the fleet as a store is set up with: the write store and what clients are
/// told about their trust.
extension FleetConfig {
    /// The configuration a server of many clients at once uses: each NAR it streams holds
    /// at most a smaller SSH window of what its client has not read yet, and so stays on
    /// libssh2 (through ssh, `nix-bridge-bench serve-slow` measured ssh's processes holding
    /// over 100 MiB and the builder sending 20 MiB per client ahead of 10 slow clients).
    public func forServing() -> FleetConfig {
        var c = self
        c.opener.sshChannelWindow = SSHTarget.servingChannelWindow
        c.opener.narsMayUseOpenSSH = false
        return c
    }

    /// The store that takes the paths clients add ('bridge-write-store'); nil when writes
    /// are refused.
    public func writeStore() throws -> RemoteStore? {
        let uri = settings.bridgeWriteStore
        return uri.isEmpty ? nil : try opener.store(try StoreURI(parsing: uri))
    }
}

extension FleetStoreBackend {
    /// The handshake's answer: writes are refused or checked by the write store, so the
    /// client is told it is not trusted (as Nix's daemon tells a user outside 'trusted-users').
    public static func handshake(version: String) -> ClientHandshakeInfo {
        ClientHandshakeInfo(daemonNixVersion: version, remoteTrustsUs: .notTrusted)
    }
}
