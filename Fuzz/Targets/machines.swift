import NixCore

/// The machines file (both syntaxes, `@file` includes served from the input itself): no
/// crash, no hang, an error or machines.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMachines(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzInput(data, size), as: UTF8.self)
    let read: FileReader = { _ in text }
    for syntax in [MachinesFile.Syntax.nix28, .current] {
        if let m = try? MachinesFile.parse(text, file: "machines", localSystem: "x86_64-linux", syntax: syntax, read: read) {
            for machine in m.machines where machine.storeUri.isEmpty { violated("machine without a store URI") }
        }
    }
    return 0
}
