import NixCore
import NixWire

extension PathInfo {
    /// The path's metadata as a daemon sent it (QueryPathInfo), in NixCore's terms (the form
    /// fingerprints, narinfo files and signature checks use).
    public init(_ path: StorePath, wire info: UnkeyedValidPathInfo) {
        self.init(path: path, deriver: info.deriver, narHash: info.narHash, references: info.references,
                  registrationTime: info.registrationTime, narSize: info.narSize, ultimate: info.ultimate,
                  sigs: info.signatures, ca: info.ca)
    }
}
