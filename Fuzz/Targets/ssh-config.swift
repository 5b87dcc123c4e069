/// ssh_config parsing (Include served from the input itself): no crash, no hang; every
/// entry names its file and a line inside the text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSHConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
    guard let config = try? SSHConfig.parse(text, file: "config", include: { pattern, _, _ in
        [(path: "included-" + pattern, text: text)]
    }) else { return 0 }
    for e in config.entries where e.line < 1 || e.line > lines { violated("entry line \(e.line) outside 1...\(lines)") }
    return 0
}
