import NixCore

/// The narinfo cache's compact record: whatever decodes re-encodes to a record that decodes
/// to the same PathInfo, and a decoded info renders as a narinfo that parses back to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCacheRecord(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let info = NarInfoRecord.decode(fuzzInput(data, size)) else { return 0 }
    guard let again = NarInfoRecord.encode(info) else { violated("decoded record does not encode") }
    if NarInfoRecord.decode(again) != info { violated("decode(encode(x)) != x") }
    let narInfo = NarInfo(pathInfo: info.withWellFormedSignatures, url: "nar/x.nar", compression: "none")
    if narInfo.renderProblem == nil {
        guard let back = try? NarInfo(parsing: narInfo.render(), whence: "record") else {
            violated("record's narinfo does not parse: \(narInfo.render())")
        }
        if back != narInfo { violated("record's narinfo does not read back") }
    }
    return 0
}
