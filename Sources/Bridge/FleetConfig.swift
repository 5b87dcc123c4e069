import Foundation
import NixCore
import NixStore
import NixTransport

/// The configuration a nix-bridge command runs with: Nix's settings (nix.conf layers plus
/// `--option`/`--builders`), the machines they name, and how to open their stores.
public struct FleetConfig: Sendable {
    public var settings: Settings
    public var machines: [Machine]
    public var warnings: [String]
    public var opener: StoreOpener

    /// Loads nix.conf the way Nix does, then the machines (`builders`, `@file`,
    /// `NIX_REMOTE_SYSTEMS`) and `~/.ssh/config`.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment,
                            overrides: [NixConfig.Override] = []) throws -> FleetConfig {
        let host = NixConfig.Host(system: localSystem(), cores: UInt32(ProcessInfo.processInfo.activeProcessorCount))
        let config = try NixConfig.load(environment: environment, host: host, overrides: overrides, read: readFile)
        let settings = config.settings
        var warnings = config.unknownSettings.map { "unknown setting '\($0.name)'" }
        let machinesFile = try MachinesFile.configured(by: settings, read: readFile)
        // Nix skips a missing machines file silently (the default /etc/nix/machines usually is).
        warnings += machinesFile.warnings.map { "\($0)" }.filter { !$0.contains("cannot find machines file") }
        var opener = StoreOpener()
        opener.sshConfig = try SSHConfig.load(path: sshConfigFile(environment: environment))
        // ssh gets the same NIX_SSHOPTS, and so reads the same ssh_config.
        opener.nixSSHOpts = environment["NIX_SSHOPTS"] ?? ""
        opener.sshConfigIsOpenSSHs = true
        opener.connectTimeout = settings.connectTimeout == 0 ? nil : .seconds(Int64(clamping: settings.connectTimeout))
        opener.stalledTimeout = settings.stalledTimeout
        opener.sshTransport = try SSHTransport(parsing: settings.sshTransport)
        for m in machinesFile.machines {
            guard let host = m.authority.map(hostOnly) else { continue }
            if let key = m.sshPublicHostKey?.base64 { opener.pinnedHostKeys[host] = key }
            if let id = m.effectiveSSHKey { opener.identityFiles[host] = id }
        }
        return FleetConfig(settings: settings, machines: machinesFile.machines, warnings: warnings, opener: opener)
    }

    /// The ssh_config to read: `-F FILE` in `NIX_SSHOPTS` (where Nix users put it for
    /// ssh-ng stores), else nil for `~/.ssh/config`.
    static func sshConfigFile(environment: [String: String]) -> String? {
        guard let opts = environment["NIX_SSHOPTS"] else { return nil }
        let words = opts.split(separator: " ").map(String.init)
        for (i, w) in words.enumerated() {
            if w == "-F", i + 1 < words.count { return words[i + 1] }
            if w.hasPrefix("-F"), w.count > 2 { return String(w.dropFirst(2)) }
        }
        return nil
    }

    /// `user@host:port` → `host`.
    static func hostOnly(_ authority: String) -> String {
        var s = Substring(authority)
        if let at = s.lastIndex(of: "@") { s = s[s.index(after: at)...] }
        if let colon = s.lastIndex(of: ":"), !s.contains("]") { s = s[..<colon] }
        return String(s)
    }

    /// Where known_hosts records an ssh-ng builder's host key, as its connection looks it up
    /// (nil for a store that is not reached over SSH).
    public func knownHostsEntries(_ storeUri: String) -> (name: String, entries: [String])? {
        guard let uri = try? StoreURI(parsing: storeUri), uri.scheme == .sshNG else { return nil }
        return opener.sshOptions(uri).knownHostsEntries
    }

    /// Store URIs of the configured machines, as the machines file gives them (a bare host
    /// name means `ssh://`, which nix-bridge reports as not supported yet: it speaks only
    /// the worker protocol, `ssh-ng://`).
    public var machineStoreURIs: [String] { machines.map(\.storeUri) }

    static func readFile(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    /// Nix's compiled-in system for this machine.
    static func localSystem() -> String {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let arch = machine == "arm64" ? "aarch64" : machine
        return arch + "-linux"
    }
}
