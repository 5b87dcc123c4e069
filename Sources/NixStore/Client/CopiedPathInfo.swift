import NixCore

extension PathInfo {
    /// The info a copy to another store sends (Nix's `copyStorePath`): the path was not built
    /// there, and that store records when it registers it.
    public var copied: PathInfo {
        var info = self
        info.ultimate = false
        info.registrationTime = 0
        return info
    }
}
