import NixCore
import NixWire

extension UnkeyedValidPathInfo {
    /// The daemon's answer as NixCore's `PathInfo` (what fingerprints and narinfo files use).
    public func pathInfo(_ path: StorePath) -> PathInfo {
        PathInfo(path: path, deriver: deriver, narHash: narHash, references: references,
                 registrationTime: registrationTime, narSize: narSize, ultimate: ultimate,
                 sigs: signatures, ca: ca)
    }
}
