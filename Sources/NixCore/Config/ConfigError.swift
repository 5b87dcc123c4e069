/// Where a setting was given: a line of a nix.conf (or of `NIX_CONFIG`), or the command line.
public struct ConfigLocation: Hashable, Sendable, CustomStringConvertible {
    public enum Source: Hashable, Sendable {
        /// A configuration file, by path.
        case file(String)
        /// An environment variable holding nix.conf text (`NIX_CONFIG`).
        case environment(String)
        /// `--option NAME VALUE` or a flag such as `--builders`.
        case commandLine
    }

    public var source: Source
    /// 1-based line; nil on the command line.
    public var line: Int?

    public init(_ source: Source, line: Int? = nil) {
        self.source = source
        self.line = line
    }

    public var description: String {
        let place = switch source {
        case let .file(path): "'\(path)'"
        case let .environment(name): "$\(name)"
        case .commandLine: "the command line"
        }
        return place + (line.map { ", line \($0)" } ?? "")
    }
}

/// A nix.conf that Nix would refuse. Names the file and line, the text and what was expected.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// Not `NAME = VALUE`, `include PATH` or `!include PATH`.
        case illegalLine(String)
        /// `include PATH` (without `!`) of a file that does not exist.
        case includeNotFound(path: String)
        /// An include that does not resolve to an absolute path (a relative one in `NIX_CONFIG`).
        case notAbsolutePath(String)
        /// Includes nested deeper than the limit.
        case includeTooDeep(path: String, limit: Int)
        /// A file including itself, directly or not.
        case includeCycle(path: String)
        /// A boolean that is not true/yes/1/false/no/0.
        case invalidBoolean(setting: String, value: String)
        /// An integer setting given something else, or out of range.
        case invalidInteger(setting: String, value: String)
        /// `max-jobs` neither `auto` nor an integer.
        case invalidMaxJobs(setting: String, value: String)
        /// `sandbox` not true/relaxed/false.
        case invalidSandboxMode(setting: String, value: String)
        /// A path setting given a relative path.
        case relativePath(setting: String, value: String)
        /// A text over the parser's bounds.
        case tooLarge(what: String, limit: Int)
    }

    public var kind: Kind
    public var location: ConfigLocation
    /// The include lines that led here, outermost first.
    public var includedFrom: [ConfigLocation]

    public init(_ kind: Kind, at location: ConfigLocation, includedFrom: [ConfigLocation] = []) {
        self.kind = kind
        self.location = location
        self.includedFrom = includedFrom
    }

    public var description: String {
        var s = "\(location): \(message)"
        for place in includedFrom.reversed() { s += "\n  included from \(place)" }
        return s
    }

    /// Nix's wording, with what was expected added.
    private var message: String {
        switch kind {
        case let .illegalLine(line):
            "illegal configuration line '\(line)' (expected 'NAME = VALUE', 'include PATH' or '!include PATH')"
        case let .includeNotFound(path):
            "file '\(path)' included from here not found (use '!include' for an optional file)"
        case let .notAbsolutePath(path):
            "not an absolute path: '\(path)' (includes here must be absolute)"
        case let .includeTooDeep(path, limit):
            "cannot include '\(path)': configuration files nested more than \(limit) deep"
        case let .includeCycle(path):
            "cannot include '\(path)': it is already being read (include cycle)"
        case let .invalidBoolean(name, value):
            "Boolean setting '\(name)' has invalid value '\(value)' (expected 'true' or 'false')"
        case let .invalidInteger(name, value):
            "setting '\(name)' has invalid value '\(value)' (expected an integer in range)"
        case let .invalidMaxJobs(name, value):
            "configuration setting '\(name)' should be 'auto' or an integer, not '\(value)'"
        case let .invalidSandboxMode(name, value):
            "option '\(name)' has invalid value '\(value)' (expected 'true', 'relaxed' or 'false')"
        case let .relativePath(name, value):
            "setting '\(name)' has invalid value '\(value)' (expected an absolute path)"
        case let .tooLarge(what, limit):
            "\(what) is too large (limit \(limit))"
        }
    }
}

/// What Nix reports as a warning (or passes over) while reading configuration.
public enum ConfigWarning: Hashable, Sendable, CustomStringConvertible {
    /// A setting no part of Nix 2.8 knows (Nix: "unknown setting 'NAME'").
    case unknownSetting(name: String, at: ConfigLocation)
    /// An experimental feature name Nix 2.8 does not know; dropped.
    case unknownExperimentalFeature(String, at: ConfigLocation)
    /// A file the reader could not read; Nix skips such files silently.
    case unreadableFile(path: String, reason: String, at: ConfigLocation?)

    public var description: String {
        switch self {
        case let .unknownSetting(name, place): "\(place): unknown setting '\(name)'"
        case let .unknownExperimentalFeature(name, place): "\(place): unknown experimental feature '\(name)'"
        case let .unreadableFile(path, reason, place):
            (place.map { "\($0): " } ?? "") + "skipping unreadable configuration file '\(path)': \(reason)"
        }
    }
}
