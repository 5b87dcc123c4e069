/// OpenSSH's ssh_config as the client reads it: `Host` and `Match` blocks, `Include` (also
/// inside blocks), and keyword lines kept in file order, so that resolving a host can walk
/// them as OpenSSH does (see `resolve`). Keywords the libssh2 transport does not use are
/// kept and shown, but have no effect.
public struct SSHConfig: Sendable, Equatable {
    /// One line of a file: the keyword (lower case) and its arguments.
    public struct Line: Sendable, Equatable {
        public var keyword: String
        public var arguments: [String]
        public var file: String
        public var line: Int
    }

    /// The lines of one file, with Includes replaced by the files they name.
    indirect enum Item: Sendable, Equatable {
        case option(Line)
        case host(Line)
        case match(Line, [SSHMatchCriterion])
        case include(Line, [IncludedFile])
    }

    struct IncludedFile: Sendable, Equatable {
        var path: String
        var items: [Item]
    }

    var items: [Item] = []
    /// Lines that parse but cannot be honoured (e.g. an unsupported Match criterion).
    public var warnings: [String] = []

    public init() {}

    /// Supplies the files an `Include` pattern names: (path, contents) for each match, in order.
    public typealias IncludeResolver = (_ pattern: String, _ fromFile: String, _ line: Int) throws(SSHConfigError) -> [(path: String, text: String)]

    /// Parses `text` (the contents of `file`); `include` is called for each Include argument.
    public static func parse(_ text: String, file: String = "ssh_config",
                             include: IncludeResolver = { _, file, line throws(SSHConfigError) in
                                 throw SSHConfigError(file: file, line: line, message: "Include is not available here")
                             }) throws(SSHConfigError) -> SSHConfig {
        var config = SSHConfig()
        config.items = try config.parseItems(text, file: file, depth: 0, include: include)
        return config
    }

    /// Appends another file's lines (OpenSSH reads the user's file, then the system one).
    mutating func append(_ other: SSHConfig) {
        items += other.items
        warnings += other.warnings
    }

    private mutating func parseItems(_ text: String, file: String, depth: Int,
                                     include: IncludeResolver) throws(SSHConfigError) -> [Item] {
        guard depth <= 16 else { throw SSHConfigError(file: file, line: 0, message: "Include nested too deeply") }
        guard text.utf8.count <= 4 << 20 else { throw SSHConfigError(file: file, line: 0, message: "file larger than 4 MiB") }
        var items: [Item] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = index + 1
            let words = try Self.split(rawLine, file: file, line: lineNo)
            guard let first = words.first else { continue }
            let keyword = first.lowercased()
            var args = Array(words.dropFirst())
            func fail(_ message: String) -> SSHConfigError { SSHConfigError(file: file, line: lineNo, message: message) }
            if Self.restOfLineKeywords.contains(keyword) {
                // OpenSSH passes the rest of the line to the shell as written (quotes included).
                let rest = Self.restOfLine(rawLine)
                args = rest.isEmpty ? [] : [rest]
            }
            let line = Line(keyword: keyword, arguments: args, file: file, line: lineNo)
            switch keyword {
            case "host":
                guard !args.isEmpty else { throw fail("Host needs at least one pattern") }
                items.append(.host(line))
            case "match":
                let criteria = try SSHMatchCriterion.parse(args, fail: fail)
                for c in criteria where !c.isSupported {
                    warnings.append("\(file):\(lineNo): Match \(c.attribute) is not supported; the block never applies")
                }
                items.append(.match(line, criteria))
            case "include":
                guard !args.isEmpty else { throw fail("Include needs a file") }
                var files: [IncludedFile] = []
                for pattern in args {
                    for (path, inner) in try include(pattern, file, lineNo) {
                        files.append(IncludedFile(path: path, items: try parseItems(inner, file: path, depth: depth + 1, include: include)))
                    }
                }
                items.append(.include(line, files))
            default:
                guard !args.isEmpty else { throw fail("\(first) needs a value") }
                try Self.validate(keyword: keyword, args: args, fail: fail)
                items.append(.option(line))
            }
        }
        return items
    }

    /// Keywords whose argument is the rest of the line, unsplit.
    static let restOfLineKeywords: Set<String> = ["proxycommand", "localcommand", "remotecommand", "knownhostscommand"]

    /// The text after the keyword and its separator, trailing blanks removed.
    static func restOfLine(_ line: Substring) -> String {
        var s = line.drop(while: { $0 == " " || $0 == "\t" })
        s = s.drop(while: { $0 != " " && $0 != "\t" && $0 != "=" })
        s = s.drop(while: { $0 == " " || $0 == "\t" || $0 == "=" })
        while let last = s.last, last == " " || last == "\t" || last == "\r" { s = s.dropLast() }
        return String(s)
    }

    /// Splits a line into words: `#` comments, quotes, and `keyword=value`.
    static func split(_ line: Substring, file: String, line lineNo: Int) throws(SSHConfigError) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character? = nil
        var inWord = false
        var sawEquals = false
        for c in line {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
                continue
            }
            switch c {
            case "\"", "'":
                quote = c
                inWord = true
            case " ", "\t", "\r":
                if inWord { words.append(current); current = ""; inWord = false }
            case "=" where !sawEquals && (words.isEmpty || (words.count == 1 && !inWord)):
                // "Keyword=value" and "Keyword = value": one '=' may separate the keyword.
                sawEquals = true
                if inWord { words.append(current); current = ""; inWord = false }
            case "#" where !inWord:
                return words
            default:
                current.append(c)
                inWord = true
            }
        }
        if quote != nil { throw SSHConfigError(file: file, line: lineNo, message: "unterminated quote") }
        if inWord { words.append(current) }
        return words
    }

    static func validate(keyword: String, args: [String], fail: (String) -> SSHConfigError) throws(SSHConfigError) {
        let yesNo = ["yes", "no", "true", "false"]
        switch keyword {
        case "port":
            guard let p = Int(args[0]), (1...65535).contains(p) else { throw fail("bad port '\(args[0])'") }
        case "connecttimeout", "serveraliveinterval":
            guard args[0] == "none" && keyword == "connecttimeout" || parseTime(args[0]) != nil else {
                throw fail("bad time value '\(args[0])' for \(keyword)")
            }
        case "serveralivecountmax":
            guard let n = Int(args[0]), n >= 0 else { throw fail("bad ServerAliveCountMax '\(args[0])'") }
        case "identitiesonly", "batchmode":
            guard yesNo.contains(args[0].lowercased()) else { throw fail("expected yes or no, got '\(args[0])'") }
        case "stricthostkeychecking":
            guard (yesNo + ["ask", "accept-new", "off"]).contains(args[0].lowercased()) else {
                throw fail("bad StrictHostKeyChecking '\(args[0])'")
            }
        case "proxyjump":
            guard args.count == 1 else { throw fail("ProxyJump takes one comma-separated list") }
            if args[0].lowercased() != "none" {
                for hop in args[0].split(separator: ",", omittingEmptySubsequences: false) {
                    guard SSHJumpSpec(String(hop)) != nil else { throw fail("bad ProxyJump hop '\(hop)'") }
                }
            }
        default: break
        }
    }

    /// OpenSSH's `convtime`: "90", "1m30s", "2h", "1w" in seconds.
    static func parseTime(_ s: String) -> Int? {
        guard !s.isEmpty else { return nil }
        var total = 0, number: Int? = nil
        for c in s.lowercased() {
            if let d = c.wholeNumberValue, c.isASCII {
                number = (number ?? 0) * 10 + d
                guard number! < 1 << 31 else { return nil }
                continue
            }
            let unit: Int
            switch c {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            case "w": unit = 604800
            default: return nil
            }
            guard let n = number else { return nil }
            total += n * unit
            number = nil
        }
        total += number ?? 0
        return total < 1 << 31 ? total : nil
    }

    /// OpenSSH's `Host` rule: some positive pattern matches and no negated one does; case
    /// matters (OpenSSH compares the name as typed).
    public static func matches(host: String, patterns: [String]) -> Bool {
        matches(host: host, patterns: patterns, foldCase: false)
    }

    /// OpenSSH's `match_pattern_list`: a comma-separated list, `!` negating.
    static func matchesList(_ s: String, list: String, caseInsensitive: Bool) -> Bool {
        let s = caseInsensitive ? s.lowercased() : s
        return matches(host: s, patterns: list.split(separator: ",").map { caseInsensitive ? $0.lowercased() : String($0) },
                       foldCase: false)
    }

    private static func matches(host: String, patterns: [String], foldCase: Bool) -> Bool {
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("!") {
                if wildcardMatch(host, String(pattern.dropFirst())) { return false }
            } else if wildcardMatch(host, pattern) {
                matched = true
            }
        }
        return matched
    }

    /// `*` and `?` glob matching.
    static func wildcardMatch(_ s: String, _ p: String) -> Bool {
        let s = Array(s.utf8), p = Array(p.utf8)
        var si = 0, pi = 0, star = -1, mark = 0
        while si < s.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == s[si]) {
                si += 1; pi += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi; mark = si; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; si = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

/// A syntax or value error in an ssh_config file.
public struct SSHConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String
    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }
    public var description: String { "\(file):\(line): \(message)" }
}
