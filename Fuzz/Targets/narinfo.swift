import NixCore

/// NarInfo: whatever parses renders to text that parses back to the same value (when it is
/// renderable), and rendering never adds lines of a field's choosing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNarInfo(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    guard let x = try? NarInfo(parsing: text, whence: "fuzz") else { return 0 }
    let rendered = x.render()
    let expectedLines = 7 + (x.fileHash == nil ? 0 : 1) + (x.pathInfo.deriver == nil ? 0 : 1)
        + ((x.system ?? "").isEmpty ? 0 : 1) + x.pathInfo.sigs.count + (x.pathInfo.ca == nil ? 0 : 1)
    if rendered.utf8.filter({ $0 == 0x0a }).count != expectedLines { violated("rendered lines: \(rendered)") }
    guard x.renderProblem == nil else { return 0 }
    guard let back = try? NarInfo(parsing: rendered, whence: "rendered") else { violated("render does not parse: \(rendered)") }
    if back != x { violated("parse(render(x)) != x") }
    if back.render() != rendered { violated("render is not stable") }
    return 0
}
