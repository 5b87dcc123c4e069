/// Prints derivations in the ATerm form of `.drv` files, byte for byte as Nix does: maps in
/// byte order; builder, arguments and environment escaped; names, paths and the system
/// printed verbatim (Nix's `printUnquotedString`).
extension Derivation {
    /// The `.drv` file's text.
    public func render(in dir: StoreDirectory) throws(DerivationError) -> String {
        var w = ATermWriter()
        try w.write(self, dir: dir, maskOutputs: false, inputsOverride: nil)
        return w.out
    }
}

struct ATermWriter {
    var out = ""

    init() { out.reserveCapacity(4096) }

    /// `maskOutputs` blanks output paths and the output variables in `env`;
    /// `inputsOverride` replaces the input derivations by hash modulo → outputs (both for
    /// `hashDerivationModulo`).
    mutating func write(_ drv: Derivation, dir: StoreDirectory, maskOutputs: Bool,
                        inputsOverride: [(String, Set<String>)]?) throws(DerivationError) {
        let dynamic = inputsOverride == nil && drv.hasDynamicInputs
        out += dynamic ? "DrvWithVersion(\"xp-dyn-drv\",[" : "Derive(["
        var first = true
        for name in drv.outputNames {
            let fields = try drv.outputs[name]!.fields(drvName: drv.name, outputName: name, storeDirectory: dir)
            comma(&first)
            out += "("
            unquoted(name)
            out += ","
            unquoted(maskOutputs ? "" : fields.path)
            out += ","
            unquoted(fields.hashAlgo)
            out += ","
            unquoted(fields.hash)
            out += ")"
        }
        out += "],["
        first = true
        if let inputsOverride {
            for (key, outs) in inputsOverride {
                comma(&first)
                out += "("
                unquoted(key)
                out += ","
                unquotedList(outs)
                out += ")"
            }
        } else {
            let sorted = drv.inputDrvs.map { (dir.print($0.key), $0.value) }.sorted { Derivation.byteOrder($0.0, $1.0) }
            for (path, wanted) in sorted {
                comma(&first)
                out += "("
                unquoted(path)
                node(wanted)
                out += ")"
            }
        }
        out += "],"
        unquotedList(drv.inputSrcs.map(dir.print))
        out += ","
        unquoted(drv.system)
        out += ","
        escaped(drv.builder)
        out += ",["
        first = true
        for a in drv.args {
            comma(&first)
            escaped(a)
        }
        out += "],["
        first = true
        for key in drv.env.keys.sorted(by: Derivation.byteOrder) {
            comma(&first)
            out += "("
            escaped(key)
            out += ","
            escaped(maskOutputs && drv.outputs[key] != nil ? "" : drv.env[key]!)
            out += ")"
        }
        out += "])"
    }

    private mutating func node(_ n: InputDrvOutputs) {
        out += ","
        if n.dynamicOutputs.isEmpty {
            unquotedList(n.outputs)
            return
        }
        out += "("
        unquotedList(n.outputs)
        out += ",["
        var first = true
        for key in n.dynamicOutputs.keys.sorted(by: Derivation.byteOrder) {
            comma(&first)
            out += "("
            unquoted(key)
            node(n.dynamicOutputs[key]!)
            out += ")"
        }
        out += "])"
    }

    private mutating func comma(_ first: inout Bool) {
        if first { first = false } else { out += "," }
    }

    private mutating func unquoted(_ s: String) {
        out += "\""
        out += s
        out += "\""
    }

    private mutating func unquotedList<S: Sequence<String>>(_ items: S) {
        out += "["
        var first = true
        for s in items.sorted(by: Derivation.byteOrder) {
            comma(&first)
            unquoted(s)
        }
        out += "]"
    }

    /// Nix's `printString`: escapes `"` `\` newline, carriage return and tab.
    private mutating func escaped(_ s: String) {
        out += "\""
        var needs = false
        for c in s.utf8 where c == 0x22 || c == 0x5C || c == 0x0A || c == 0x0D || c == 0x09 {
            needs = true
            break
        }
        if !needs {
            out += s
        } else {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(s.utf8.count + 16)
            for c in s.utf8 {
                switch c {
                case 0x22, 0x5C: bytes.append(0x5C); bytes.append(c)
                case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
                default: bytes.append(c)
                }
            }
            out += String(decoding: bytes, as: UTF8.self)
        }
        out += "\""
    }
}
