extension MachinesFile {
    /// The machines Nix would build on, from typed settings: `builders` is parsed as a machine
    /// list (inline machines separated by `;` or newlines, `@FILE` lines read through `read`,
    /// missing files skipped), with `system` as the default systems column. Settings from
    /// `NixConfig.load` already carry `NIX_REMOTE_SYSTEMS` (it sets `builders`' default).
    public static func configured(by settings: Settings, syntax: Syntax = .nix28, limits: Limits = Limits(),
                                  read: FileReader) throws(MachinesError) -> MachinesFile {
        try parse(settings.builders, file: nil, localSystem: settings.system, syntax: syntax, limits: limits,
                  read: read)
    }
}
