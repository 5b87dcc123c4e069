/// Where a machine list comes from: a machines file, or the text of a setting
/// (`builders`, `--builders`).
public enum MachinesSource: Hashable, Sendable, CustomStringConvertible {
    case file(String)
    case setting(String)

    public var description: String {
        switch self {
        case let .file(path): "machines file '\(path)'"
        case let .setting(name): "'\(name)' setting"
        }
    }
}

/// A place in a machine list: 1-based line and column (columns count characters).
public struct MachinesLocation: Hashable, Sendable, CustomStringConvertible {
    public var source: MachinesSource
    public var line: Int
    public var column: Int?

    public init(source: MachinesSource, line: Int, column: Int? = nil) {
        self.source = source
        self.line = line
        self.column = column
    }

    public var description: String {
        "\(source), line \(line)" + (column.map { ", column \($0)" } ?? "")
    }
}

/// A machine list that cannot be used. Names the place, the offending text and what was expected.
public struct MachinesError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The first column is empty or `-`.
        case missingStoreUri
        /// Column 4 is not an unsigned 32-bit integer.
        case invalidMaxJobs(String)
        /// Column 5 is not a number Nix accepts (`floats` tells which grammar applied).
        case invalidSpeedFactor(String, floats: Bool)
        /// Column 5 is negative (Nix after 2.8: "speed factor must be >= 0").
        case negativeSpeedFactor(String)
        /// Column 8 is not base64.
        case invalidHostKey(String, EncodingError)
        /// A legacy remote-systems.conf line without its systems column.
        case missingSystems
        /// A legacy remote-systems.conf line starting with `@` (it has no includes).
        case includeNotSupported(String)
        /// `@file` nesting deeper than the limit.
        case includeTooDeep(path: String, limit: Int)
        /// `@file` including itself, directly or not.
        case includeCycle(path: String)
        /// The reader failed for a reason other than "no such file".
        case unreadable(path: String, reason: String)
        /// A text, line, or machine count over the parser's bounds.
        case tooLarge(what: String, limit: Int)
    }

    public var kind: Kind
    public var location: MachinesLocation
    /// The machine entry the error is in (empty for file-level errors).
    public var entry: String
    /// The `@file` lines that led here, outermost first.
    public var includedFrom: [MachinesLocation]

    public init(_ kind: Kind, at location: MachinesLocation, entry: String = "", includedFrom: [MachinesLocation] = []) {
        self.kind = kind
        self.location = location
        self.entry = entry
        self.includedFrom = includedFrom
    }

    public var description: String {
        var s = "\(location): " + message
        if !entry.isEmpty { s += " in '\(entry)'" }
        for place in includedFrom.reversed() { s += "\n  included from \(place)" }
        return s
    }

    private var message: String {
        switch kind {
        case .missingStoreUri:
            return "bad machine specification: no store URI (expected a store URI or host name in the first column)"
        case let .invalidMaxJobs(text):
            return "invalid max-jobs '\(text)' (expected a non-negative integer)"
        case let .invalidSpeedFactor(text, floats):
            return "invalid speed factor '\(text)' (expected \(floats ? "a non-negative number" : "a non-negative integer"))"
        case let .negativeSpeedFactor(text):
            return "invalid speed factor '\(text)' (speed factor must be >= 0)"
        case let .invalidHostKey(text, error):
            return "invalid SSH public host key '\(text)' (expected base64 of an OpenSSH public key line: \(error))"
        case .missingSystems:
            return "missing systems column (expected a comma-separated list of systems such as 'x86_64-linux')"
        case let .includeNotSupported(text):
            return "'\(text)' is an include, which remote-systems.conf does not support (expected a machine line)"
        case let .includeTooDeep(path, limit):
            return "cannot include '\(path)': machines files nested more than \(limit) deep"
        case let .includeCycle(path):
            return "cannot include '\(path)': it is already being read (include cycle)"
        case let .unreadable(path, reason):
            return "cannot read machines file '\(path)': \(reason)"
        case let .tooLarge(what, limit):
            return "\(what) is too large (limit \(limit))"
        }
    }
}

/// Something Nix accepts silently but a user may want to hear about.
public enum MachinesWarning: Hashable, Sendable, CustomStringConvertible {
    /// `@file` names a file that does not exist; Nix skips it (it only logs at debug level).
    case missingFile(path: String, at: MachinesLocation)
    /// Columns after the 8th (7th in remote-systems.conf); Nix ignores them.
    case ignoredColumns([String], at: MachinesLocation)

    public var description: String {
        switch self {
        case let .missingFile(path, place): "\(place): cannot find machines file '\(path)'; skipping it"
        case let .ignoredColumns(columns, place):
            "\(place): ignoring extra columns '\(columns.joined(separator: " "))'"
        }
    }
}
