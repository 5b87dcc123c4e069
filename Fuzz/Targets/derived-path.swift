import NixCore

/// DerivedPath, both separators and the wire forms: what parses renders back to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDerivedPath(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    for sep in [DerivedPathSeparator.caret, .legacy] {
        if let p = try? DerivedPath(parsing: text, in: .default, separator: sep) {
            let r = p.render(in: .default, separator: sep)
            if (try? DerivedPath(parsing: r, in: .default, separator: sep)) != p { violated("render does not read back: \(r)") }
            for minor in [29, 30, 37] {
                if let w = try? p.wireString(in: .default, protocolMinor: minor),
                   (try? DerivedPath(wireString: w, in: .default, protocolMinor: minor)) != p {
                    violated("wire form at 1.\(minor) does not read back: \(w)")
                }
            }
        }
    }
    return 0
}
