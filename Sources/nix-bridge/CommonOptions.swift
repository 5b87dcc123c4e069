import ArgumentParser
import Bridge
import NixCore

/// Options every command that reads Nix's configuration takes, as the nix CLI spells them.
struct NixOptions: ParsableArguments {
    @Option(name: .customLong("option"), parsing: .upToNextOption,
            help: ArgumentHelp("Set a Nix setting: --option NAME VALUE.", valueName: "name value"))
    var options: [String] = []
    @Option(help: "The machines to use, as in nix.conf's 'builders' (e.g. 'ssh-ng://b1 x86_64-linux ; @/etc/nix/machines').")
    var builders: String?

    func validate() throws {
        if options.count % 2 != 0 {
            throw ValidationError("'--option' requires two arguments (NAME VALUE)")
        }
    }

    var overrides: [NixConfig.Override] {
        var out: [NixConfig.Override] = []
        var i = 0
        while i + 1 < options.count {
            out.append(.option(options[i], options[i + 1]))
            i += 2
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
