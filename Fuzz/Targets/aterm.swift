import NixCore

/// ATerm derivations: whatever parses renders to text that parses back to the same value,
/// and rendering that again gives the same text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzATerm(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let drv = try? Derivation(parsing: fuzzInput(data, size), name: "fuzz") else { return 0 }
    guard let text = try? drv.render(in: .default) else { return 0 }
    guard let back = try? Derivation(parsing: text, name: "fuzz") else { violated("render does not parse: \(text)") }
    if back != drv { violated("parse(render(x)) != x") }
    if (try? back.render(in: .default)) != text { violated("render is not stable") }
    return 0
}
