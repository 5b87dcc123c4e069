/// ssh_config parsing (Include served from the input itself): no crash, no hang; every
/// entry names its file and a line inside the text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSHConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
    guard let config = try? SSHConfig.parse(text, file: "config", include: { pattern, _, _ in
        [(path: "included-" + pattern, text: text)]
    }) else { return 0 }
    // Every included file is the input itself, so every line number is one of its lines.
    func check(_ items: [SSHConfig.Item]) {
        for item in items {
            let line: SSHConfig.Line
            switch item {
            case let .option(l), let .host(l), let .match(l, _): line = l
            case let .include(l, files):
                line = l
                for f in files { check(f.items) }
            }
            if line.line < 1 || line.line > lines { violated("line \(line.line) outside 1...\(lines)") }
        }
    }
    check(config.items)
    return 0
}
