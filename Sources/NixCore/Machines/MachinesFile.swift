/// A parsed machine list: Nix's machines file (`/etc/nix/machines`) or the `builders` setting.
///
/// Each entry is up to 8 whitespace-separated columns, `-` leaving one at its default:
/// store URI, systems (comma list, default the local system), SSH identity file, max jobs
/// (default 1), speed factor (default 1), supported features, mandatory features, base64 host
/// key. Entries are separated by newlines and `;`; `#` starts a comment; `@PATH` includes
/// another machine list (a missing file is skipped, as in Nix). Paths after `@` are passed to
/// the reader as written (Nix opens them relative to its working directory).
public struct MachinesFile: Hashable, Sendable {
    /// The grammar to follow; they differ only in the details listed.
    public enum Syntax: Hashable, Sendable {
        /// Nix 2.8 (the reference): the text is split at every newline and `;` first, and `#`
        /// then cuts only its own `;`-separated piece, so `# a ; host` still declares `host`.
        /// Pieces are not trimmed: ` @file` is a store URI, not an include, and a piece of
        /// only blanks (`a ; ; b`, a line of spaces) is an error. Max jobs and speed factor
        /// are unsigned integers (a speed factor of 0 means 1).
        case nix28
        /// Later Nix (2.20+): `#` cuts the whole line before `;` splits it, pieces are trimmed
        /// and blank ones skipped, and the speed factor is a number (`1.5`), negative ones
        /// being refused.
        case current
        /// The 1.x `remote-systems.conf` of `NIX_REMOTE_SYSTEMS` + build-remote.pl: one machine
        /// per line, no `;`, no `@` includes, 7 columns (no host key), the systems column is
        /// required. (1.x split columns at each single whitespace character and turned bad
        /// numbers into 0; here columns are whitespace runs and bad numbers are errors.)
        case remoteSystemsConf
    }

    /// Bounds on what the parser reads.
    public struct Limits: Hashable, Sendable {
        public var maxIncludeDepth = 16
        public var maxTextBytes = 16 << 20
        public var maxEntryBytes = 64 << 10
        public var maxMachines = 100_000
        public init() {}
    }

    /// The machines, in order.
    public var machines: [Machine]
    /// What Nix passes over silently (missing `@` files, ignored columns).
    public var warnings: [MachinesWarning]

    /// Parses a machine list. `file` names the text in errors (nil: the `builders` setting);
    /// `localSystem` is the default for the systems column; `read` supplies `@file` contents.
    public static func parse(_ text: String, file: String?, localSystem: String, syntax: Syntax = .nix28,
                             limits: Limits = Limits(), read: FileReader) throws(MachinesError) -> MachinesFile {
        try withoutActuallyEscaping(read) { read throws(MachinesError) in
            var parser = MachinesParser(localSystem: localSystem, syntax: syntax, limits: limits, read: read)
            try parser.parse(text, source: file.map { .file($0) } ?? .setting("builders"), includedFrom: [], stack: [])
            return MachinesFile(machines: parser.machines, warnings: parser.warnings)
        }
    }

    /// Parses text that cannot include other files (an `@` entry is then reported missing).
    public static func parse(_ text: String, file: String?, localSystem: String,
                             syntax: Syntax = .nix28) throws(MachinesError) -> MachinesFile {
        try parse(text, file: file, localSystem: localSystem, syntax: syntax, read: { _ in nil })
    }
}

/// One machine entry found in a text: its characters and where it starts.
struct MachineEntry {
    var text: [Unicode.Scalar]
    var location: MachinesLocation
}

struct MachinesParser {
    let localSystem: String
    let syntax: MachinesFile.Syntax
    let limits: MachinesFile.Limits
    let read: FileReader
    var machines: [Machine] = []
    var warnings: [MachinesWarning] = []

    init(localSystem: String, syntax: MachinesFile.Syntax, limits: MachinesFile.Limits, read: @escaping FileReader) {
        self.localSystem = localSystem
        self.syntax = syntax
        self.limits = limits
        self.read = read
    }

    mutating func parse(_ text: String, source: MachinesSource, includedFrom: [MachinesLocation],
                        stack: [String]) throws(MachinesError) {
        guard text.utf8.count <= limits.maxTextBytes else {
            throw MachinesError(.tooLarge(what: "machine list", limit: limits.maxTextBytes),
                                at: MachinesLocation(source: source, line: 1), includedFrom: includedFrom)
        }
        for entry in MachinesParser.entries(of: text, source: source, syntax: syntax) {
            let string = String(String.UnicodeScalarView(entry.text))
            guard string.utf8.count <= limits.maxEntryBytes else {
                throw MachinesError(.tooLarge(what: "machine entry", limit: limits.maxEntryBytes),
                                    at: entry.location, includedFrom: includedFrom)
            }
            if entry.text.first == "@" {
                try include(entry, string, includedFrom: includedFrom, stack: stack)
                continue
            }
            guard machines.count < limits.maxMachines else {
                throw MachinesError(.tooLarge(what: "machine list", limit: limits.maxMachines),
                                    at: entry.location, includedFrom: includedFrom)
            }
            let fields = MachineFields(entry: entry, syntax: syntax, localSystem: localSystem)
            do {
                let (machine, extra) = try fields.machine()
                machines.append(machine)
                if !extra.isEmpty { warnings.append(.ignoredColumns(extra, at: entry.location)) }
            } catch {
                var e = error
                e.entry = string
                e.includedFrom = includedFrom
                throw e
            }
        }
    }

    private mutating func include(_ entry: MachineEntry, _ string: String, includedFrom: [MachinesLocation],
                                  stack: [String]) throws(MachinesError) {
        guard syntax != .remoteSystemsConf else {
            throw MachinesError(.includeNotSupported(string), at: entry.location, includedFrom: includedFrom)
        }
        let path = string.dropFirst().trimmingNixWhitespace()
        guard !path.isEmpty else {
            warnings.append(.missingFile(path: path, at: entry.location))
            return
        }
        guard !stack.contains(path) else {
            throw MachinesError(.includeCycle(path: path), at: entry.location, includedFrom: includedFrom)
        }
        guard stack.count < limits.maxIncludeDepth else {
            throw MachinesError(.includeTooDeep(path: path, limit: limits.maxIncludeDepth),
                                at: entry.location, includedFrom: includedFrom)
        }
        let contents: String?
        do {
            contents = try read(path)
        } catch {
            throw MachinesError(.unreadable(path: path, reason: "\(error)"), at: entry.location,
                                includedFrom: includedFrom)
        }
        guard let contents else {
            warnings.append(.missingFile(path: path, at: entry.location))
            return
        }
        try parse(contents, source: .file(path), includedFrom: includedFrom + [entry.location], stack: stack + [path])
    }

    /// Splits a text into entries: comments cut, blank pieces dropped, whitespace trimmed.
    static func entries(of text: String, source: MachinesSource, syntax: MachinesFile.Syntax) -> [MachineEntry] {
        var result: [MachineEntry] = []
        var line = 1
        for lineText in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            defer { line += 1 }
            let scalars = Array(lineText)
            // The pieces of this line, as (start, end) offsets, before comment removal.
            var pieces: [(Int, Int)] = []
            switch syntax {
            case .nix28:
                var start = 0
                for (i, c) in scalars.enumerated() where c == ";" {
                    pieces.append((start, i))
                    start = i + 1
                }
                pieces.append((start, scalars.count))
                pieces = pieces.map { p in (p.0, scalars[p.0..<p.1].firstIndex(of: "#") ?? p.1) }
            case .current:
                let end = scalars.firstIndex(of: "#") ?? scalars.count
                var start = 0
                for i in 0..<end where scalars[i] == ";" {
                    pieces.append((start, i))
                    start = i + 1
                }
                pieces.append((start, end))
            case .remoteSystemsConf:
                pieces.append((0, scalars.firstIndex(of: "#") ?? scalars.count))
            }
            for (start, end) in pieces {
                var s = start, e = end
                if syntax == .nix28 {
                    // Nix 2.8 calls `trim(line)` without using the result: pieces keep their
                    // whitespace, so only truly empty ones are skipped, and a blank one
                    // (`a ; ; b`, a line of spaces) is a machine without a store URI.
                    if s == e { continue }
                } else {
                    while s < e, scalars[s].isNixWhitespace { s += 1 }
                    while e > s, scalars[e - 1].isNixWhitespace { e -= 1 }
                    if s == e { continue }
                }
                result.append(MachineEntry(text: Array(scalars[s..<e]),
                                           location: MachinesLocation(source: source, line: line, column: s + 1)))
            }
        }
        return result
    }
}

extension Unicode.Scalar {
    /// The separators of Nix's `tokenizeString` default: space, tab, newline, carriage return.
    var isNixWhitespace: Bool { self == " " || self == "\t" || self == "\n" || self == "\r" }
}

extension StringProtocol {
    func trimmingNixWhitespace() -> String {
        let s = Array(unicodeScalars)
        var a = 0, b = s.count
        while a < b, s[a].isNixWhitespace { a += 1 }
        while b > a, s[b - 1].isNixWhitespace { b -= 1 }
        return String(String.UnicodeScalarView(s[a..<b]))
    }
}
