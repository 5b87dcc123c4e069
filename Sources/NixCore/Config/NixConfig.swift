/// A setting's parsed value.
public enum SettingValue: Hashable, Sendable {
    case string(String)
    /// A `Strings` list in order, or a `StringSet` sorted and unique.
    case list([String])
    case map([String: String])
    case bool(Bool)
    case unsigned(UInt64)
    case signed(Int64)
    /// `max-jobs = auto`: the host's core count.
    case auto
}

/// A setting Nix does not know, kept as given (Nix warns "unknown setting 'NAME'").
public struct UnknownSetting: Hashable, Sendable {
    public var name: String
    public var value: String
    public var location: ConfigLocation
}

/// Nix configuration as Nix 2.8 builds it from nix.conf files, `NIX_CONFIG` and the command
/// line: later assignments win, `extra-NAME` appends to list settings, unknown names are kept.
/// Pure: files come through a `FileReader`, the environment as a dictionary.
public struct NixConfig: Sendable {
    /// Facts about the local machine that Nix computes at startup and uses as defaults.
    public struct Host: Hashable, Sendable {
        /// Nix's compiled-in system, e.g. `x86_64-linux` (default of `system`).
        public var system: String
        /// Cores (`max-jobs = auto`, and the `cores` default).
        public var cores: UInt32
        /// Default of `system-features`.
        public var systemFeatures: Set<String>
        /// Default of `extra-platforms`.
        public var extraPlatforms: Set<String>

        public init(system: String, cores: UInt32 = 1, systemFeatures: Set<String>? = nil,
                    extraPlatforms: Set<String> = []) {
            self.system = system
            self.cores = max(1, cores)
            self.systemFeatures = systemFeatures ?? Host.defaultSystemFeatures(kvm: false)
            self.extraPlatforms = extraPlatforms
        }

        /// Nix's default features: the Nixpkgs routing pseudo-features, plus `kvm` when
        /// `/dev/kvm` is usable (the caller checks).
        public static func defaultSystemFeatures(kvm: Bool) -> Set<String> {
            var f: Set<String> = ["nixos-test", "benchmark", "big-parallel"]
            if kvm { f.insert("kvm") }
            return f
        }
    }

    public let host: Host
    /// Explicitly set values, by canonical setting name.
    public private(set) var values: [String: SettingValue] = [:]
    /// Where each explicitly set value was last set (or appended to).
    public private(set) var origins: [String: ConfigLocation] = [:]
    /// Defaults that Nix takes from the environment (`builders`, `store`).
    var environmentDefaults: [String: SettingValue] = [:]
    /// Unknown settings, in the order given.
    public private(set) var unknownSettings: [UnknownSetting] = []
    /// Warnings collected while reading (unknown settings, unreadable files, ...).
    public internal(set) var warnings: [ConfigWarning] = []

    /// An empty configuration: every setting at its default.
    public init(host: Host) {
        self.host = host
    }

    /// Sets `name` (a setting, an alias, or `extra-` + an appendable one) from its text,
    /// as `Config::set` does; unknown names are kept in `unknownSettings`.
    public mutating func set(_ name: String, to text: String, at location: ConfigLocation) throws(ConfigError) {
        var append = false
        var definition = SettingCatalog.byName[name]
        if definition == nil, name.hasPrefix("extra-"),
           let base = SettingCatalog.byName[String(name.dropFirst(6))], base.kind.isAppendable {
            definition = base
            append = true
        }
        guard let definition else {
            unknownSettings.append(UnknownSetting(name: name, value: text, location: location))
            warnings.append(.unknownSetting(name: name, at: location))
            return
        }
        let current = append ? value(of: definition.name) : nil
        values[definition.name] = try parse(text, as: definition, appendingTo: current, at: location)
        origins[definition.name] = location
    }

    /// The value of a setting (canonical name or alias): set, else Nix's default.
    public func value(of name: String) -> SettingValue? {
        let canonical = SettingCatalog.byName[name]?.name ?? name
        return values[canonical] ?? defaultValue(of: canonical)
    }

    /// The value as Nix's `show-config` prints it.
    public func text(of name: String) -> String? {
        switch value(of: name) {
        case nil: nil
        case let .string(s)?: s
        case let .list(l)?: l.joined(separator: " ")
        case let .map(m)?: m.keys.sorted().map { "\($0)=\(m[$0]!)" }.joined(separator: " ")
        case let .bool(b)?: b ? "true" : "false"
        case let .unsigned(n)?: String(n)
        case let .signed(n)?: String(n)
        case .auto?: String(host.cores)
        }
    }

    /// True when Nix knows `name` (a setting or an alias).
    public static func isKnownSetting(_ name: String) -> Bool { SettingCatalog.byName[name] != nil }

    /// Defaults of the settings this project reads, and of the lists one may append to.
    func defaultValue(of name: String) -> SettingValue? {
        if let v = environmentDefaults[name] { return v }
        switch name {
        case "builders": return .string("@/etc/nix/machines")
        case "store": return .string("auto")
        case "substituters": return .list(["https://cache.nixos.org/"])
        case "trusted-public-keys": return .list(["cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="])
        case "trusted-users": return .list(["root"])
        case "allowed-users": return .list(["*"])
        case "ignored-acls": return .list(["security.selinux", "system.nfs4_acl"])
        case "system": return .string(host.system)
        case "system-features": return .list(host.systemFeatures.sorted())
        case "extra-platforms": return .list(host.extraPlatforms.sorted())
        case "max-jobs": return .unsigned(1)
        case "cores": return .unsigned(UInt64(host.cores))
        case "narinfo-cache-positive-ttl": return .unsigned(30 * 24 * 3600)
        case "narinfo-cache-negative-ttl": return .unsigned(3600)
        case "connect-timeout": return .unsigned(0)
        case "ssh-transport": return .string("auto")
        case "stalled-download-timeout": return .unsigned(300)
        case "bridge-failed-builder-ttl": return .unsigned(60)
        case "builders-use-substitutes": return .bool(false)
        case "require-sigs": return .bool(true)
        default:
            guard let def = SettingCatalog.byName[name] else { return nil }
            switch def.kind {
            case .strings, .stringSet, .experimentalFeatures: return .list([])
            case .stringMap: return .map([:])
            default: return nil
            }
        }
    }

    private mutating func parse(_ text: String, as def: SettingDefinition, appendingTo current: SettingValue?,
                                at location: ConfigLocation) throws(ConfigError) -> SettingValue {
        let name = def.name
        func words() -> [String] { text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init) }
        var existing: [String] = []
        if case let .list(l)? = current { existing = l }
        switch def.kind {
        case .string:
            return .string(text)
        case .path:
            guard !text.isEmpty else { return .string("") }
            guard let path = ConfigPath.canonical(text) else {
                throw ConfigError(.relativePath(setting: name, value: text), at: location)
            }
            return .string(path)
        case .strings:
            return .list(existing + words())
        case .stringSet:
            return .list(Set(existing + words()).sorted())
        case .experimentalFeatures:
            var features = Set(existing)
            for w in words() {
                if SettingCatalog.experimentalFeatures.contains(w) {
                    features.insert(w)
                } else {
                    warnings.append(.unknownExperimentalFeature(w, at: location))
                }
            }
            return .list(features.sorted())
        case .stringMap:
            var map: [String: String] = [:]
            if case let .map(m)? = current { map = m }
            for w in words() {
                guard let eq = w.firstIndex(of: "=") else { continue }
                let key = String(w[..<eq])
                if map[key] == nil { map[key] = String(w[w.index(after: eq)...]) }
            }
            return .map(map)
        case .bool:
            switch text {
            case "true", "yes", "1": return .bool(true)
            case "false", "no", "0": return .bool(false)
            default: throw ConfigError(.invalidBoolean(setting: name, value: text), at: location)
            }
        case .unsigned32, .unsigned64:
            let limit = def.kind == .unsigned32 ? UInt64(UInt32.max) : UInt64.max
            guard let n = NixNumber.unsigned(text, max: limit) else {
                throw ConfigError(.invalidInteger(setting: name, value: text), at: location)
            }
            return .unsigned(n)
        case .signed64:
            guard let n = NixNumber.signed(text, min: Int64.min, max: Int64.max) else {
                throw ConfigError(.invalidInteger(setting: name, value: text), at: location)
            }
            return .signed(n)
        case .maxJobs:
            if text == "auto" { return .auto }
            guard let n = NixNumber.unsigned(text, max: UInt64(UInt32.max)) else {
                throw ConfigError(.invalidMaxJobs(setting: name, value: text), at: location)
            }
            return .unsigned(n)
        case .sandboxMode:
            guard ["true", "relaxed", "false"].contains(text) else {
                throw ConfigError(.invalidSandboxMode(setting: name, value: text), at: location)
            }
            return .string(text)
        }
    }
}
