import NixCore

/// ATerm derivations: whatever parses renders to text that parses back to the same value,
/// and rendering that again gives the same text. Like Nix's `unparse`, the writer prints
/// the system and output names unquoted (their bytes are part of every output path's hash),
/// so a derivation whose such fields hold `"` or `\` cannot read back; Nix's parser accepts
/// those too, so the property is only asked of derivations without them.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzATerm(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let drv = try? Derivation(parsing: fuzzInput(data, size), name: "fuzz") else { return 0 }
    guard let text = try? drv.render(in: .default) else { return 0 }
    guard printsUnquoted(drv) else { return 0 }
    let back: Derivation
    do { back = try Derivation(parsing: text, name: "fuzz") } catch { violated("render does not parse (\(error)): \(text.prefix(400))") }
    if back != drv { violated("parse(render(x)) != x") }
    if (try? back.render(in: .default)) != text { violated("render is not stable") }
    return 0
}

/// True when every field the writer prints unquoted is free of `"` and `\`.
func printsUnquoted(_ drv: Derivation) -> Bool {
    func plain(_ s: String) -> Bool { !s.utf8.contains(0x22) && !s.utf8.contains(0x5C) }
    func plain(_ n: InputDrvOutputs) -> Bool {
        n.outputs.allSatisfy(plain) && n.dynamicOutputs.allSatisfy { plain($0.key) && plain($0.value) }
    }
    return plain(drv.system) && drv.outputs.keys.allSatisfy(plain) && drv.inputDrvs.values.allSatisfy(plain)
}
