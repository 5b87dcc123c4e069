/// What a setting's value is, which decides how Nix parses it and whether `extra-NAME` appends.
enum SettingKind: Hashable, Sendable {
    case string
    /// A path setting (`build-hook`, `diff-hook`): empty, or made canonical; relative is an error.
    case path
    /// A whitespace-separated list kept in order (`Strings`); appendable.
    case strings
    /// A whitespace-separated set (`StringSet`), sorted and unique; appendable.
    case stringSet
    /// `key=value` words (`StringMap`); appendable.
    case stringMap
    case bool
    /// `unsigned int`.
    case unsigned32
    /// `unsigned long`, `uint64_t`, `size_t`.
    case unsigned64
    /// `time_t`, `off_t`.
    case signed64
    /// `max-jobs`: `auto` or an `unsigned int`.
    case maxJobs
    /// `sandbox`: `true`, `relaxed` or `false`.
    case sandboxMode
    /// `experimental-features`: a set of known feature names (unknown ones are dropped with a warning).
    case experimentalFeatures

    var isAppendable: Bool {
        switch self {
        case .strings, .stringSet, .stringMap, .experimentalFeatures: true
        default: false
        }
    }
}

/// A setting Nix 2.8 knows: its name, kind and old names.
struct SettingDefinition: Hashable, Sendable {
    let name: String
    let kind: SettingKind
    let aliases: [String]

    init(_ name: String, _ kind: SettingKind, aliases: [String] = []) {
        self.name = name
        self.kind = kind
        self.aliases = aliases
    }
}

/// The settings of Nix 2.8's `nix` (all of `nix show-config`), so that the settings this
/// project does not use are still recognised (not reported unknown) and parsed as Nix would.
enum SettingCatalog {
    static let all: [SettingDefinition] = [
        .init("accept-flake-config", .bool),
        .init("access-tokens", .stringMap),
        .init("allow-dirty", .bool),
        .init("allow-import-from-derivation", .bool),
        .init("allow-new-privileges", .bool),
        .init("allow-symlinked-store", .bool),
        .init("allow-unsafe-native-code-during-evaluation", .bool),
        .init("allowed-impure-host-deps", .stringSet),
        .init("allowed-uris", .strings),
        .init("allowed-users", .strings),
        .init("auto-optimise-store", .bool),
        .init("bash-prompt", .string),
        .init("bash-prompt-suffix", .string),
        .init("build-hook", .path),
        .init("build-poll-interval", .unsigned32),
        .init("build-users-group", .string),
        .init("builders", .string),
        .init("builders-use-substitutes", .bool),
        .init("commit-lockfile-summary", .string),
        .init("compress-build-log", .bool, aliases: ["build-compress-log"]),
        .init("connect-timeout", .unsigned64),
        .init("cores", .unsigned32, aliases: ["build-cores"]),
        .init("diff-hook", .path),
        .init("download-attempts", .unsigned32),
        .init("enforce-determinism", .bool),
        .init("eval-cache", .bool),
        .init("experimental-features", .experimentalFeatures),
        .init("extra-platforms", .stringSet),
        .init("fallback", .bool, aliases: ["build-fallback"]),
        .init("filter-syscalls", .bool),
        .init("flake-registry", .string),
        .init("fsync-metadata", .bool),
        .init("gc-reserved-space", .signed64),
        .init("hashed-mirrors", .strings),
        .init("http-connections", .unsigned64, aliases: ["binary-caches-parallel-connections"]),
        .init("http2", .bool),
        .init("ignored-acls", .stringSet),
        .init("impersonate-linux-26", .bool, aliases: ["build-impersonate-linux-26"]),
        .init("keep-build-log", .bool, aliases: ["build-keep-log"]),
        .init("keep-derivations", .bool, aliases: ["gc-keep-derivations"]),
        .init("keep-env-derivations", .bool, aliases: ["env-keep-derivations"]),
        .init("keep-failed", .bool),
        .init("keep-going", .bool),
        .init("keep-outputs", .bool, aliases: ["gc-keep-outputs"]),
        .init("log-lines", .unsigned64),
        .init("max-build-log-size", .unsigned64, aliases: ["build-max-log-size"]),
        .init("max-free", .unsigned64),
        .init("max-jobs", .maxJobs, aliases: ["build-max-jobs"]),
        .init("max-silent-time", .signed64, aliases: ["build-max-silent-time"]),
        .init("min-free", .unsigned64),
        .init("min-free-check-interval", .unsigned64),
        .init("nar-buffer-size", .unsigned64),
        .init("narinfo-cache-negative-ttl", .unsigned32),
        .init("narinfo-cache-positive-ttl", .unsigned32),
        .init("netrc-file", .string),
        .init("nix-path", .strings),
        .init("plugin-files", .strings),
        .init("post-build-hook", .string),
        .init("pre-build-hook", .string),
        .init("preallocate-contents", .bool),
        .init("print-missing", .bool),
        .init("pure-eval", .bool),
        .init("repeat", .unsigned64, aliases: ["build-repeat"]),
        .init("require-sigs", .bool),
        .init("restrict-eval", .bool),
        .init("run-diff-hook", .bool),
        .init("sandbox", .sandboxMode, aliases: ["build-use-chroot", "build-use-sandbox"]),
        .init("sandbox-build-dir", .string),
        .init("sandbox-dev-shm-size", .string),
        .init("sandbox-fallback", .bool),
        .init("sandbox-paths", .stringSet, aliases: ["build-chroot-dirs", "build-sandbox-paths"]),
        .init("secret-key-files", .strings),
        .init("show-trace", .bool),
        .init("stalled-download-timeout", .unsigned64),
        .init("store", .string),
        .init("substitute", .bool, aliases: ["build-use-substitutes"]),
        .init("substituters", .strings, aliases: ["binary-caches"]),
        .init("sync-before-registering", .bool),
        .init("system", .string),
        .init("system-features", .stringSet),
        .init("tarball-ttl", .unsigned32),
        .init("timeout", .signed64, aliases: ["build-timeout"]),
        .init("trace-function-calls", .bool),
        .init("trusted-public-keys", .strings, aliases: ["binary-cache-public-keys"]),
        .init("trusted-substituters", .stringSet, aliases: ["trusted-binary-caches"]),
        .init("trusted-users", .strings),
        .init("use-case-hack", .bool),
        .init("use-registries", .bool),
        .init("use-sqlite-wal", .bool),
        .init("user-agent-suffix", .string),
        .init("warn-dirty", .bool),
        // nix-bridge's own (Nix does not know it; set where only nix-bridge reads it).
        .init("bridge-write-store", .string),
        .init("bridge-socket", .string),
        .init("bridge-failed-builder-ttl", .unsigned64),
        .init("ssh-transport", .string),
    ]

    /// Names and aliases to definitions.
    static let byName: [String: SettingDefinition] = {
        var map: [String: SettingDefinition] = [:]
        for def in all {
            map[def.name] = def
            for alias in def.aliases { map[alias] = def }
        }
        return map
    }()

    /// Experimental features Nix 2.8 knows.
    static let experimentalFeatures: Set<String> = [
        "ca-derivations", "impure-derivations", "flakes", "nix-command", "recursive-nix", "no-url-literals",
        "fetch-closure",
    ]
}
