/// Parses the ATerm form of `.drv` files, following Nix's `derivation::parse`: the classic
/// `Derive(…)` and the dynamic-derivations `DrvWithVersion("xp-dyn-drv",…)`.
extension Derivation {
    /// Bounds on what the parser accepts.
    public struct ParseLimits: Sendable {
        /// Largest `.drv` file accepted.
        public var maxBytes: Int
        /// Deepest nesting of dynamic inputs (`drv^out^out…`).
        public var maxNesting: Int

        public init(maxBytes: Int = 64 << 20, maxNesting: Int = 32) {
            self.maxBytes = maxBytes
            self.maxNesting = maxNesting
        }
    }

    /// Parses a `.drv` file. `name` is the derivation's name (the file's name without `.drv`),
    /// which fixed outputs' paths depend on.
    public init(parsing bytes: [UInt8], name: String, storeDirectory: StoreDirectory = .default,
                limits: ParseLimits = ParseLimits()) throws(DerivationParseError) {
        var p = ATermParser(bytes: bytes, name: name, dir: storeDirectory, limits: limits)
        self = try p.parse()
    }

    public init(parsing text: String, name: String, storeDirectory: StoreDirectory = .default,
                limits: ParseLimits = ParseLimits()) throws(DerivationParseError) {
        try self.init(parsing: Array(text.utf8), name: name, storeDirectory: storeDirectory, limits: limits)
    }
}

/// A `.drv` file that could not be parsed, with where and why.
public struct DerivationParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// `what` was expected at this point; `found` is what is there (nil: end of input).
        case expected(String, found: String?)
        case notADerivation
        case unknownVersion(String)
        case unterminatedString
        case invalidUTF8
        /// `(` in an input derivation entry of a classic `Derive(…)`.
        case dynamicInputsInClassicFormat
        case noOutputsWanted(String)
        case trailingData
        case tooLarge(limit: Int)
        case tooDeep(limit: Int)
        case invalid(DerivationError)
    }

    /// The derivation's name as given to the parser.
    public var name: String
    /// Byte offset (0-based) of the problem.
    public var offset: Int
    /// 1-based line and column (in bytes) of `offset`.
    public var line: Int
    public var column: Int
    public var reason: Reason

    public var description: String {
        let at = "derivation '\(name)', byte \(offset) (line \(line), column \(column))"
        switch reason {
        case let .expected(what, found):
            return "\(at): expected \(what), found \(found.map { "'\($0)'" } ?? "end of input")"
        case .notADerivation: return "\(at): derivation does not start with 'Derive' or 'DrvWithVersion'"
        case let .unknownVersion(v): return "\(at): Unknown derivation ATerm format version '\(v)'"
        case .unterminatedString: return "\(at): unterminated string in derivation"
        case .invalidUTF8: return "\(at): string is not valid UTF-8"
        case .dynamicInputsInClassicFormat:
            return "\(at): invalid inputDrvs entry in derivation (dynamic inputs need DrvWithVersion)"
        case let .noOutputsWanted(p): return "\(at): inputDrvs entry for '\(p)' specifies no outputs"
        case .trailingData: return "\(at): unexpected data after the derivation"
        case let .tooLarge(limit): return "\(at): derivation is larger than \(limit) bytes"
        case let .tooDeep(limit): return "\(at): inputs nested deeper than \(limit)"
        case let .invalid(e): return "\(at): \(e)"
        }
    }
}

struct ATermParser {
    let bytes: [UInt8]
    let name: String
    let dir: StoreDirectory
    let limits: Derivation.ParseLimits
    var pos = 0
    var dynamic = false

    init(bytes: [UInt8], name: String, dir: StoreDirectory, limits: Derivation.ParseLimits) {
        self.bytes = bytes
        self.name = name
        self.dir = dir
        self.limits = limits
    }

    func fail(_ reason: DerivationParseError.Reason, at offset: Int? = nil) -> DerivationParseError {
        let o = min(offset ?? pos, bytes.count)
        var line = 1, lineStart = 0
        for i in 0..<o where bytes[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        return DerivationParseError(name: name, offset: o, line: line, column: o - lineStart + 1, reason: reason)
    }

    mutating func expect(_ s: StaticString) throws(DerivationParseError) {
        let n = s.utf8CodeUnitCount
        let want = UnsafeBufferPointer(start: s.utf8Start, count: n)
        let end = min(pos + n, bytes.count)
        guard end - pos == n, bytes[pos..<end].elementsEqual(want) else {
            let found = pos < bytes.count ? String(decoding: bytes[pos..<min(pos + n, bytes.count)], as: UTF8.self) : nil
            throw fail(.expected("'\(s)'", found: found))
        }
        pos = end
    }

    func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    /// Nix's `endOfList`: consumes `,` (more follows) or `]` (done).
    mutating func endOfList() -> Bool {
        switch peek() {
        case UInt8(ascii: ","): pos += 1; return false
        case UInt8(ascii: "]"): pos += 1; return true
        default: return false
        }
    }

    /// A quoted string; `\n` `\r` `\t` are control characters, `\x` is `x`.
    mutating func string() throws(DerivationParseError) -> String {
        try expect("\"")
        let start = pos
        var out: [UInt8]? = nil
        var i = pos
        while true {
            guard i < bytes.count else { throw fail(.unterminatedString, at: start - 1) }
            let c = bytes[i]
            if c == 0x22 { break }
            if c == 0x5C {
                if out == nil { out = Array(bytes[start..<i]) }
                guard i + 1 < bytes.count else { throw fail(.unterminatedString, at: start - 1) }
                switch bytes[i + 1] {
                case UInt8(ascii: "n"): out!.append(0x0A)
                case UInt8(ascii: "r"): out!.append(0x0D)
                case UInt8(ascii: "t"): out!.append(0x09)
                case let e: out!.append(e)
                }
                i += 2
                continue
            }
            out?.append(c)
            i += 1
        }
        pos = i + 1
        let raw = out.map { ArraySlice($0) } ?? bytes[start..<i]
        guard let s = String(validating: raw, as: UTF8.self) else { throw fail(.invalidUTF8, at: start) }
        return s
    }

    mutating func storePath() throws(DerivationParseError) -> StorePath {
        let at = pos
        let s = try string()
        do { return try dir.parse(s) } catch { throw fail(.invalid(.badStorePath(s, error)), at: at) }
    }

    mutating func strings() throws(DerivationParseError) -> Set<String> {
        try expect("[")
        var res = Set<String>()
        while !endOfList() { res.insert(try string()) }
        return res
    }

    mutating func parse() throws(DerivationParseError) -> Derivation {
        guard bytes.count <= limits.maxBytes else { throw fail(.tooLarge(limit: limits.maxBytes), at: 0) }
        var drv = Derivation(name: name, outputs: [:], system: "", builder: "")
        guard bytes.first == UInt8(ascii: "D") else { throw fail(.notADerivation) }
        if bytes.starts(with: "Derive(".utf8) {
            pos = 7
        } else if bytes.starts(with: "DrvWithVersion(".utf8) {
            pos = 15
            let at = pos
            let version = try string()
            guard version == "xp-dyn-drv" else { throw fail(.unknownVersion(version), at: at) }
            dynamic = true
            try expect(",")
        } else {
            throw fail(.notADerivation)
        }

        try expect("[")
        while !endOfList() {
            try expect("(")
            let id = try string()
            try expect(",")
            let at = pos
            let path = try string()
            try expect(",")
            let algo = try string()
            try expect(",")
            let hash = try string()
            try expect(")")
            let output: DerivationOutput
            do {
                output = try DerivationOutput(path: path, hashAlgo: algo, hash: hash, drvName: name, outputName: id,
                                              storeDirectory: dir)
            } catch {
                throw fail(.invalid(error), at: at)
            }
            if drv.outputs[id] == nil { drv.outputs[id] = output } // Nix's `emplace` keeps the first
        }

        try expect(",[")
        while !endOfList() {
            try expect("(")
            let at = pos
            let drvPath = try storePath()
            try expect(",")
            let node = try inputNode(depth: 1)
            if node.outputs.isEmpty && node.dynamicOutputs.isEmpty {
                throw fail(.noOutputsWanted(dir.print(drvPath)), at: at)
            }
            drv.inputDrvs[drvPath] = node
            try expect(")")
        }

        try expect(",[")
        while !endOfList() { drv.inputSrcs.insert(try storePath()) }
        try expect(",")
        drv.system = try string()
        try expect(",")
        drv.builder = try string()
        try expect(",[")
        while !endOfList() { drv.args.append(try string()) }
        try expect(",[")
        while !endOfList() {
            try expect("(")
            let k = try string()
            try expect(",")
            drv.env[k] = try string()
            try expect(")")
        }
        try expect(")")
        guard pos == bytes.count else { throw fail(.trailingData) }
        return drv
    }

    /// `["out"]`, or with dynamic derivations `(["out"],[("out",…)])`.
    mutating func inputNode(depth: Int) throws(DerivationParseError) -> InputDrvOutputs {
        guard depth <= limits.maxNesting else { throw fail(.tooDeep(limit: limits.maxNesting)) }
        switch peek() {
        case UInt8(ascii: "["):
            return InputDrvOutputs(try strings())
        case UInt8(ascii: "(") where dynamic:
            pos += 1
            var node = InputDrvOutputs(try strings())
            try expect(",[")
            while !endOfList() {
                try expect("(")
                let out = try string()
                try expect(",")
                node.dynamicOutputs[out] = try inputNode(depth: depth + 1)
                try expect(")")
            }
            try expect(")")
            return node
        case UInt8(ascii: "("):
            throw fail(.dynamicInputsInClassicFormat)
        default:
            let found = peek().map { String(decoding: [$0], as: UTF8.self) }
            throw fail(.expected(dynamic ? "'[' or '('" : "'['", found: found))
        }
    }
}
