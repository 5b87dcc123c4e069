/// The settings nix-bridge uses, typed, with Nix 2.8's names and defaults.
public struct Settings: Hashable, Sendable {
    /// `builders`: machine list text (`@FILE` lines and/or inline machines separated by `;`);
    /// default `@/etc/nix/machines` (`@$NIX_CONF_DIR/machines`).
    public var builders: String
    /// `builders-use-substitutes` (default false).
    public var buildersUseSubstitutes: Bool
    /// `substituters` (default `https://cache.nixos.org/`), in order.
    public var substituters: [String]
    /// `trusted-substituters` (default empty).
    public var trustedSubstituters: [String]
    /// `trusted-public-keys` (default the cache.nixos.org key).
    public var trustedPublicKeys: [String]
    /// `secret-key-files` (default empty).
    public var secretKeyFiles: [String]
    /// `max-jobs` (default 1; `auto` is the host's cores).
    public var maxJobs: UInt32
    /// `narinfo-cache-positive-ttl` in seconds (default 2592000, 30 days).
    public var narinfoCachePositiveTTL: UInt32
    /// `narinfo-cache-negative-ttl` in seconds (default 3600).
    public var narinfoCacheNegativeTTL: UInt32
    /// `system` (default the host's system).
    public var system: String
    /// `extra-platforms` (default the host's).
    public var extraPlatforms: Set<String>
    /// `system-features` (default the host's).
    public var systemFeatures: Set<String>
    /// `require-sigs` (default true).
    public var requireSigs: Bool
    /// `store` (default `$NIX_REMOTE`, else `auto`).
    public var store: String
    /// `connect-timeout` in seconds (default 0: ssh_config's `ConnectTimeout`, else 14 s for
    /// the SSH connect and 60 s for the worker handshake; see `StoreOpener`).
    public var connectTimeout: UInt64
    /// `stalled-download-timeout` in seconds (default 300): a worker-protocol reply (other
    /// than a build's) or a transfer that makes no progress for this long fails.
    public var stalledDownloadTimeout: UInt64
    /// `stalled-download-timeout` as a duration, nil when 0 (no limit): it bounds a builder
    /// that stops sending, and a client of `serve` that stops reading.
    public var stalledTimeout: Duration? {
        stalledDownloadTimeout == 0 ? nil : .seconds(Int64(clamping: stalledDownloadTimeout))
    }
    /// `bridge-failed-builder-ttl`, nix-bridge's own, in seconds (default 60): how long a
    /// builder that timed out is skipped by later commands (`FailedBuilders`).
    public var bridgeFailedBuilderTTL: UInt64
    /// `trusted-users` (default `root`).
    public var trustedUsers: [String]
    /// `bridge-write-store`, nix-bridge's own: the store URI `nix-bridge --stdio` forwards
    /// added paths and signatures to; empty (the default) refuses writes.
    public var bridgeWriteStore: String
    /// `bridge-socket`, nix-bridge's own: the Unix socket of the long-running service
    /// (`nix-bridge serve`), which `nix-bridge --stdio` relays to when it answers. Default
    /// `$NIX_STATE_DIR/bridge-socket/socket` (`/nix/var/nix/bridge-socket/socket`), beside
    /// Nix's `daemon-socket/socket`; empty: `--stdio` always serves alone.
    public var bridgeSocket: String
    /// `ssh-transport`, nix-bridge's own: `libssh2`, `openssh` (the user's `ssh`, as Nix
    /// runs it) or `auto` (the default: libssh2 unless a host's ssh_config needs OpenSSH).
    public var sshTransport: String

    /// Reads the typed view of a configuration.
    public init(_ config: NixConfig) {
        func string(_ n: String) -> String {
            if case let .string(s)? = config.value(of: n) { return s }
            return ""
        }
        func list(_ n: String) -> [String] {
            if case let .list(l)? = config.value(of: n) { return l }
            return []
        }
        func bool(_ n: String) -> Bool {
            if case let .bool(b)? = config.value(of: n) { return b }
            return false
        }
        func number(_ n: String) -> UInt64 {
            switch config.value(of: n) {
            case let .unsigned(v)?: v
            case .auto?: UInt64(config.host.cores)
            default: 0
            }
        }
        builders = string("builders")
        buildersUseSubstitutes = bool("builders-use-substitutes")
        substituters = list("substituters")
        trustedSubstituters = list("trusted-substituters")
        trustedPublicKeys = list("trusted-public-keys")
        secretKeyFiles = list("secret-key-files")
        // Values were range-checked as unsigned int when set.
        maxJobs = UInt32(truncatingIfNeeded: number("max-jobs"))
        narinfoCachePositiveTTL = UInt32(truncatingIfNeeded: number("narinfo-cache-positive-ttl"))
        narinfoCacheNegativeTTL = UInt32(truncatingIfNeeded: number("narinfo-cache-negative-ttl"))
        system = string("system")
        extraPlatforms = Set(list("extra-platforms"))
        systemFeatures = Set(list("system-features"))
        requireSigs = bool("require-sigs")
        store = string("store")
        connectTimeout = number("connect-timeout")
        stalledDownloadTimeout = number("stalled-download-timeout")
        bridgeFailedBuilderTTL = number("bridge-failed-builder-ttl")
        trustedUsers = list("trusted-users")
        bridgeWriteStore = string("bridge-write-store")
        bridgeSocket = string("bridge-socket")
        sshTransport = string("ssh-transport")
    }
}
