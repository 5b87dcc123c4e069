/// Which outputs of a derivation are wanted: all (`*`) or some named ones (`OutputsSpec`).
public enum OutputsSpec: Sendable, Hashable {
    case all
    /// A non-empty set of output names.
    case names(Set<String>)

    /// `*` or `a,b` (names sorted).
    public var rendered: String {
        switch self {
        case .all: return "*"
        case let .names(n): return n.sorted(by: Derivation.byteOrder).joined(separator: ",")
        }
    }

    /// `*`, or comma-separated names each valid as a store path name (Nix's `OutputsSpec::parse`).
    public init(parsing s: some StringProtocol, whole: String) throws(DerivedPathError) {
        if s == "*" { self = .all; return }
        var names = Set<String>()
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(part)
            do { try StorePath.checkName(name, path: name) } catch { throw .badOutputName(whole, name, error) }
            names.insert(name)
        }
        self = .names(names)
    }
}

/// The separator between a derivation and its outputs: `^` in the CLI and JSON era,
/// `!` in Nix 2.8's CLI and on the worker protocol (both before and from 1.30).
public enum DerivedPathSeparator: String, Sendable {
    case caret = "^"
    case legacy = "!"
}

/// A single store path that is either there already or is one output of a derivation
/// (possibly itself an output: dynamic derivations), Nix's `SingleDerivedPath`.
public indirect enum SingleDerivedPath: Sendable, Hashable {
    case opaque(StorePath)
    case built(drvPath: SingleDerivedPath, output: String)

    /// The store path at the bottom (the `.drv` or plain path).
    public var baseStorePath: StorePath {
        switch self {
        case let .opaque(p): return p
        case let .built(d, _): return d.baseStorePath
        }
    }

    public func render(in dir: StoreDirectory, separator: DerivedPathSeparator = .caret) -> String {
        switch self {
        case let .opaque(p): return dir.print(p)
        case let .built(d, o): return d.render(in: dir, separator: separator) + separator.rawValue + o
        }
    }

    /// `/nix/store/…-foo.drv^out` (the last separator splits, as in Nix's `parseWithSingle`).
    public init(parsing s: String, in dir: StoreDirectory, separator: DerivedPathSeparator = .caret,
                maxNesting: Int = 16) throws(DerivedPathError) {
        self = try SingleDerivedPath.parse(Substring(s), whole: s, dir: dir, sep: separator, depth: maxNesting)
    }

    static func parse(_ s: Substring, whole: String, dir: StoreDirectory, sep: DerivedPathSeparator,
                      depth: Int) throws(DerivedPathError) -> SingleDerivedPath {
        guard let i = s.lastIndex(of: Character(sep.rawValue)) else {
            do { return .opaque(try dir.parse(s)) } catch { throw .badStorePath(whole, error) }
        }
        guard depth > 0 else { throw .tooDeep(whole) }
        let output = String(s[s.index(after: i)...])
        do { try StorePath.checkName(output, path: output) } catch { throw .badOutputName(whole, output, error) }
        let drv = try parse(s[..<i], whole: whole, dir: dir, sep: sep, depth: depth - 1)
        guard drv.baseStorePath.isDerivation else { throw .notADerivation(whole) }
        return .built(drvPath: drv, output: output)
    }
}

/// What the CLI and `buildPaths` ask for: a store path, or outputs of a derivation
/// (Nix's `DerivedPath`).
public enum DerivedPath: Sendable, Hashable {
    case opaque(StorePath)
    case built(drvPath: SingleDerivedPath, outputs: OutputsSpec)

    /// `path`, or `drv^out1,out2` / `drv^*` (`!` with `.legacy`, as `to_string_legacy`).
    public func render(in dir: StoreDirectory, separator: DerivedPathSeparator = .caret) -> String {
        switch self {
        case let .opaque(p): return dir.print(p)
        case let .built(d, o): return d.render(in: dir, separator: separator) + separator.rawValue + o.rendered
        }
    }

    /// Parses `path`, `drv^out`, `drv^a,b`, `drv^*` (or with `!`). A path without separator
    /// is opaque even when it is a `.drv`.
    public init(parsing s: String, in dir: StoreDirectory, separator: DerivedPathSeparator = .caret,
                maxNesting: Int = 16) throws(DerivedPathError) {
        let sub = Substring(s)
        guard let i = sub.lastIndex(of: Character(separator.rawValue)) else {
            do { self = .opaque(try dir.parse(sub)) } catch { throw .badStorePath(s, error) }
            return
        }
        let outputs = try OutputsSpec(parsing: sub[sub.index(after: i)...], whole: s)
        let drv = try SingleDerivedPath.parse(sub[..<i], whole: s, dir: dir, sep: separator, depth: maxNesting)
        guard drv.baseStorePath.isDerivation else { throw .notADerivation(s) }
        self = .built(drvPath: drv, outputs: outputs)
    }

    /// The worker protocol's string for this path: from 1.30 `to_string_legacy` (`drv!out`,
    /// `drv!*`); before, `StorePathWithOutputs` (`drv!out`, bare `drv` for all outputs), which
    /// cannot express a `.drv` file itself nor nested outputs.
    public func wireString(in dir: StoreDirectory, protocolMinor: Int) throws(DerivedPathError) -> String {
        if protocolMinor >= 30 { return render(in: dir, separator: .legacy) }
        switch self {
        case let .opaque(p):
            if p.isDerivation { throw .tooOldForDerivationFile(dir.print(p), protocolMinor: protocolMinor) }
            return dir.print(p)
        case let .built(.opaque(drv), .all):
            return dir.print(drv)
        case let .built(.opaque(drv), .names(n)):
            return dir.print(drv) + "!" + n.sorted(by: Derivation.byteOrder).joined(separator: ",")
        case .built:
            throw .tooOldForDynamic(render(in: dir))
        }
    }

    /// Reads the worker protocol's string: from 1.30 as `parseLegacy`; before as
    /// `parsePathWithOutputs` (a bare `.drv` means all its outputs).
    public init(wireString s: String, in dir: StoreDirectory, protocolMinor: Int) throws(DerivedPathError) {
        if protocolMinor >= 30 {
            try self.init(parsing: s, in: dir, separator: .legacy)
            return
        }
        guard let i = s.firstIndex(of: "!") else {
            let p: StorePath
            do { p = try dir.parse(s) } catch { throw .badStorePath(s, error) }
            self = p.isDerivation ? .built(drvPath: .opaque(p), outputs: .all) : .opaque(p)
            return
        }
        let p: StorePath
        do { p = try dir.parse(s[..<i]) } catch { throw .badStorePath(s, error) }
        // tokenizeString drops empty names; an empty list means all outputs there.
        let names = s[s.index(after: i)...].split(separator: ",").map(String.init)
        for n in names {
            do { try StorePath.checkName(n, path: n) } catch { throw .badOutputName(s, n, error) }
        }
        if names.isEmpty {
            self = p.isDerivation ? .built(drvPath: .opaque(p), outputs: .all) : .opaque(p)
        } else {
            guard p.isDerivation else { throw .notADerivation(s) }
            self = .built(drvPath: .opaque(p), outputs: .names(Set(names)))
        }
    }
}

/// Why a derived path was refused.
public enum DerivedPathError: Error, Equatable, Sendable, CustomStringConvertible {
    case badStorePath(String, StorePathError)
    case badOutputName(String, String, StorePathError)
    case notADerivation(String)
    case tooDeep(String)
    case tooOldForDerivationFile(String, protocolMinor: Int)
    case tooOldForDynamic(String)

    public var description: String {
        switch self {
        case let .badStorePath(s, e): return "invalid derived path '\(s)': \(e)"
        case let .badOutputName(s, n, _): return "invalid derived path '\(s)': invalid output name '\(n)'"
        case let .notADerivation(s): return "invalid derived path '\(s)': outputs can only be taken of a '.drv' path"
        case let .tooDeep(s): return "invalid derived path '\(s)': outputs nested too deeply"
        case let .tooOldForDerivationFile(p, minor):
            return "trying to request '\(p)', but daemon protocol 1.\(minor) is too old (< 1.29) to request a derivation file"
        case let .tooOldForDynamic(s):
            return "wanted to build '\(s)', a derivation that is itself a build product, but protocols do not support that"
        }
    }
}
