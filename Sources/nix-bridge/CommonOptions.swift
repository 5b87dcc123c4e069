import ArgumentParser
import Bridge
import NixCore
import NarInfoCache

/// Options every command that reads Nix's configuration takes, as the nix CLI spells them.
struct NixOptions: ParsableArguments {
    /// Each `--option NAME VALUE` arrives here as one `NAME=VALUE` (see `joiningOptionPairs`),
    /// so that targets after it are not taken for more values.
    @Option(name: .customLong("option"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Set a Nix setting: --option NAME VALUE.", valueName: "name value"))
    var options: [String] = []
    @Option(help: "The machines to use, as in nix.conf's 'builders' (e.g. 'ssh-ng://b1 x86_64-linux ; @/etc/nix/machines').")
    var builders: String?

    func validate() throws {
        for o in options where !o.contains("=") {
            throw ValidationError("'--option' requires two arguments (NAME VALUE), got only '\(o)'")
        }
    }

    var overrides: [NixConfig.Override] {
        var out: [NixConfig.Override] = []
        for o in options {
            guard let eq = o.firstIndex(of: "=") else { continue }
            out.append(.option(String(o[..<eq]), String(o[o.index(after: eq)...])))
        }
        if let builders { out.append(.builders(builders)) }
        return out
    }

    func load() throws -> FleetConfig {
        let config = try FleetConfig.load(overrides: overrides)
        for w in config.warnings { printError("warning: \(w)") }
        return config
    }
}

extension NixOptions {
    /// Nix spells a setting `--option NAME VALUE` (two values), which ArgumentParser cannot
    /// express without also swallowing the arguments that follow. Before parsing, each such
    /// pair becomes `--option NAME=VALUE` (setting names never contain `=`).
    static func joiningOptionPairs(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "--" { out += arguments[i...]; break }
            if a == "--option", i + 2 < arguments.count {
                out += ["--option", arguments[i + 1] + "=" + arguments[i + 2]]
                i += 3
            } else {
                out.append(a)
                i += 1
            }
        }
        return out
    }
}

/// Where answers come from besides the machines, and where they are cached: the options of
/// every command that looks paths up on the fleet (lookup, substitute, build, serve).
struct LookupSourceOptions: ParsableArguments {
    @Option(help: "Worker-protocol stores to ask besides the machines (space-separated URIs).")
    var substituters: String?
    @Option(help: "The narinfo cache file (default: ~/.cache/nix-bridge/narinfo-cache-v1.sqlite).")
    var narinfoCache: String?

    /// The lookup across the machines and `--substituters`, answered from the cache first
    /// (none when `noCache`; a one-shot command goes on without it when it cannot be opened,
    /// see `usableCache`); nil when there is no store to ask.
    func lookup(_ config: FleetConfig, sigsNeeded: Int = 1, noCache: Bool = false) throws -> Lookup? {
        try lookup(config, sigsNeeded: sigsNeeded, cache: noCache ? nil : usableCache(config))
    }

    /// A cache write that fails (a full disk) is a warning naming the file; the answers stand.
    func lookup(_ config: FleetConfig, sigsNeeded: Int = 1, cache: NarInfoCache?) throws -> Lookup? {
        var lookup = try config.lookup(extraSubstituters: substituters, sigsNeeded: sigsNeeded, cache: cache)
        lookup?.warnOnCacheWriteFailures { printError($0) }
        return lookup
    }

    /// The narinfo cache (`--narinfo-cache`, else the default file).
    func cache(_ config: FleetConfig) throws -> NarInfoCache {
        try config.narInfoCache(path: narinfoCache)
    }

    /// The narinfo cache, or nil with a warning naming the file when it cannot be opened (a
    /// full disk: SQLite cannot make its `-wal` and `-shm` files): a one-shot command's
    /// answers are only slower without it. (`serve` refuses to start instead.)
    func usableCache(_ config: FleetConfig) -> NarInfoCache? {
        do {
            return try cache(config)
        } catch {
            printError("warning: answers are not cached: \(error)")
            return nil
        }
    }
}
