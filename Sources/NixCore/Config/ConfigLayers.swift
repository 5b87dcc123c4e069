extension NixConfig {
    /// A setting from the command line, applied after every file: `--option NAME VALUE`, or a
    /// setting's own flag (`--builders X` is `("builders", X)`, `--max-jobs N`/`-j N` is
    /// `("max-jobs", N)`, `--extra-substituters X` is `("extra-substituters", X)`,
    /// `--no-require-sigs` is `("require-sigs", "false")`).
    public struct Override: Hashable, Sendable {
        public var name: String
        public var value: String

        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }

        /// `--option NAME VALUE`.
        public static func option(_ name: String, _ value: String) -> Override { Override(name, value) }
        /// `--builders SPEC`.
        public static func builders(_ spec: String) -> Override { Override("builders", spec) }
        /// `--max-jobs N` / `-j N` (`auto` allowed).
        public static func maxJobs(_ n: String) -> Override { Override("max-jobs", n) }
        /// A boolean setting's `--NAME` / `--no-NAME` flag.
        public static func flag(_ name: String, _ on: Bool) -> Override { Override(name, on ? "true" : "false") }
    }

    /// Nix's configuration directory: `$NIX_CONF_DIR`, else `/etc/nix`.
    public static func configDirectory(environment: [String: String]) -> String {
        let dir = environment["NIX_CONF_DIR"] ?? "/etc/nix"
        return ConfigPath.canonical(dir) ?? dir
    }

    /// The user configuration files, highest precedence first: `$NIX_USER_CONF_FILES`
    /// (colon-separated) if set, else `nix/nix.conf` under `$XDG_CONFIG_HOME` (default
    /// `$HOME/.config`) and then under each of `$XDG_CONFIG_DIRS` (default `/etc/xdg`).
    public static func userConfigFiles(environment: [String: String]) -> [String] {
        if let files = environment["NIX_USER_CONF_FILES"] {
            return files.split(separator: ":").map(String.init)
        }
        var dirs: [String] = []
        if let home = environment["XDG_CONFIG_HOME"] {
            dirs.append(home)
        } else if let home = environment["HOME"] {
            dirs.append(home + "/.config")
        }
        dirs += (environment["XDG_CONFIG_DIRS"] ?? "/etc/xdg").split(separator: ":").map(String.init)
        return dirs.map { $0 + "/nix/nix.conf" }
    }

    /// Loads configuration as Nix 2.8 does at startup, lowest precedence first:
    /// defaults (some from the environment: `NIX_CONF_DIR`, `NIX_REMOTE`, `NIX_REMOTE_SYSTEMS`),
    /// `$NIX_CONF_DIR/nix.conf`, the user files (the first listed wins), the text of
    /// `$NIX_CONFIG`, then `overrides` in order.
    ///
    /// `NIX_REMOTE_SYSTEMS` (colon-separated machines files, the pre-2.0 way) sets the
    /// default of `builders` to `@FILE` lines, so any `builders` setting replaces it. (Nix 2.8
    /// joins them with spaces, which breaks for more than one file; later Nix joins them
    /// with newlines, as done here.)
    public static func load(environment: [String: String], host: Host, overrides: [Override] = [],
                            limits: Limits = Limits(), read: FileReader) throws(ConfigError) -> NixConfig {
        var config = NixConfig(host: host)
        let confDir = configDirectory(environment: environment)
        config.environmentDefaults["builders"] = .string(defaultBuilders(environment: environment))
        config.environmentDefaults["bridge-socket"] = .string(defaultBridgeSocket(environment: environment))
        if let remote = environment["NIX_REMOTE"] { config.environmentDefaults["store"] = .string(remote) }
        try config.applyFile(confDir + "/nix.conf", limits: limits, read: read)
        for file in userConfigFiles(environment: environment).reversed() {
            try config.applyFile(file, limits: limits, read: read)
        }
        if let text = environment["NIX_CONFIG"] {
            try config.apply(text, from: .environment("NIX_CONFIG"), limits: limits, read: read)
        }
        for o in overrides {
            try config.set(o.name, to: o.value, at: ConfigLocation(.commandLine))
        }
        return config
    }

    /// `bridge-socket`'s default: beside Nix's daemon socket, under `NIX_STATE_DIR`.
    public static func defaultBridgeSocket(environment: [String: String]) -> String {
        (environment["NIX_STATE_DIR"] ?? "/nix/var/nix") + "/bridge-socket/socket"
    }

    /// `builders`' default: `@$NIX_CONF_DIR/machines`, or the `NIX_REMOTE_SYSTEMS` files.
    public static func defaultBuilders(environment: [String: String]) -> String {
        if let files = environment["NIX_REMOTE_SYSTEMS"] {
            return files.split(separator: ":").map { "@" + $0 }.joined(separator: "\n")
        }
        return "@" + configDirectory(environment: environment) + "/machines"
    }

    /// The typed settings this project uses.
    public var settings: Settings { Settings(self) }
}
