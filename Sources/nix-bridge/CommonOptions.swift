import ArgumentParser
import Bridge
import NixCore

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
