/// The part of OpenSSH's ssh_config that Nix users rely on to reach builders: `Host` blocks
/// (wildcards, negation, several patterns), HostName, User, Port, IdentityFile,
/// IdentitiesOnly, UserKnownHostsFile, HostKeyAlias, StrictHostKeyChecking, ConnectTimeout,
/// BatchMode and `Include`. Other keywords are kept but ignored; `Match` blocks never apply
/// (they are listed in `warnings`). As in OpenSSH, the first value obtained for a keyword
/// wins, except IdentityFile, whose values accumulate.
public struct SSHConfig: Sendable, Equatable {
    /// One `keyword arguments` line with the `Host` conditions it is under (the enclosing
    /// block of each `Include` level, outermost first).
    public struct Entry: Sendable, Equatable {
        public var conditions: [[String]]
        public var keyword: String
        public var arguments: [String]
        public var file: String
        public var line: Int
    }

    public var entries: [Entry] = []
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
        try config.parse(text, file: file, outer: [], depth: 0, include: include)
        return config
    }

    private mutating func parse(_ text: String, file: String, outer: [[String]], depth: Int,
                                include: IncludeResolver) throws(SSHConfigError) {
        guard depth <= 16 else { throw SSHConfigError(file: file, line: 0, message: "Include nested too deeply") }
        guard text.utf8.count <= 4 << 20 else { throw SSHConfigError(file: file, line: 0, message: "file larger than 4 MiB") }
        var block: [String]? = nil  // nil: before any Host line (applies to every host)
        var inMatch = false
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = index + 1
            let words = try Self.split(rawLine, file: file, line: lineNo)
            guard let first = words.first else { continue }
            let keyword = first.lowercased()
            let args = Array(words.dropFirst())
            func fail(_ message: String) -> SSHConfigError { SSHConfigError(file: file, line: lineNo, message: message) }
            switch keyword {
            case "host":
                guard !args.isEmpty else { throw fail("Host needs at least one pattern") }
                block = args
                inMatch = false
            case "match":
                inMatch = true
                warnings.append("\(file):\(lineNo): Match blocks are not supported; ignored")
            default:
                if inMatch { continue }
                let conditions = outer + (block.map { [$0] } ?? [])
                if keyword == "include" {
                    guard !args.isEmpty else { throw fail("Include needs a file") }
                    for pattern in args {
                        for (path, inner) in try include(pattern, file, lineNo) {
                            try parse(inner, file: path, outer: conditions, depth: depth + 1, include: include)
                        }
                    }
                    continue
                }
                guard !args.isEmpty else { throw fail("\(first) needs a value") }
                try Self.validate(keyword: keyword, args: args, fail: fail)
                entries.append(Entry(conditions: conditions, keyword: keyword, arguments: args, file: file, line: lineNo))
            }
        }
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
        switch keyword {
        case "port":
            guard let p = Int(args[0]), (1...65535).contains(p) else { throw fail("bad port '\(args[0])'") }
        case "connecttimeout":
            guard let t = Int(args[0]), t >= 0 else { throw fail("bad ConnectTimeout '\(args[0])'") }
        case "identitiesonly", "batchmode":
            guard ["yes", "no"].contains(args[0].lowercased()) else { throw fail("expected yes or no, got '\(args[0])'") }
        case "stricthostkeychecking":
            guard ["yes", "no", "ask", "accept-new", "off"].contains(args[0].lowercased()) else {
                throw fail("bad StrictHostKeyChecking '\(args[0])'")
            }
        default: break
        }
    }

    /// OpenSSH's pattern-list rule: some positive pattern matches and no negated one does.
    public static func matches(host: String, patterns: [String]) -> Bool {
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("!") {
                if wildcardMatch(host.lowercased(), pattern.dropFirst().lowercased()) { return false }
            } else if wildcardMatch(host.lowercased(), pattern.lowercased()) {
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
