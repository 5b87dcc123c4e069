import NixCore

/// ContentAddress and Hash parsing: every accepted text renders (in each encoding) to one
/// that parses back to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzContentAddress(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    if let ca = try? ContentAddress(parsing: text) {
        if (try? ContentAddress(parsing: ca.description)) != ca { violated("CA does not read back: \(ca)") }
    }
    if let h = try? Hash(parsing: text) {
        for f in [HashFormat.nix32, .base16, .base64] {
            if (try? Hash(parsing: h.string(f))) != h { violated("hash does not read back in \(f)") }
        }
        if (try? Hash(parsing: h.string(.nix32, withAlgorithm: false), algorithm: h.algorithm)) != h {
            violated("bare hash does not read back")
        }
    }
    return 0
}
