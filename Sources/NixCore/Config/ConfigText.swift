extension NixConfig {
    /// Bounds on what configuration parsing reads.
    public struct Limits: Hashable, Sendable {
        public var maxIncludeDepth = 16
        public var maxTextBytes = 16 << 20
        public init() {}
    }

    /// Applies nix.conf text, as Nix's `applyConfig`: one `NAME = VALUE` per line (the value is
    /// the rest of the line's words joined by single spaces), `#` starts a comment anywhere,
    /// no line continuation, `include PATH` / `!include PATH` (relative to the including
    /// file; `!` when a missing file is fine).
    ///
    /// `source` names the text in errors: `.file(path)` also anchors relative includes;
    /// `.environment("NIX_CONFIG")` accepts only absolute includes (Nix resolves them against
    /// the pseudo-path's directory `.`, which is not absolute).
    public mutating func apply(_ text: String, from source: ConfigLocation.Source, limits: Limits = Limits(),
                               read: FileReader) throws(ConfigError) {
        try withoutActuallyEscaping(read) { read throws(ConfigError) in
            let stack: [String] = if case let .file(path) = source { [path] } else { [] }
            try applyText(text, source: source, includedFrom: [], stack: stack, limits: limits, read: read)
        }
    }

    /// Applies a whole file, as Nix's `applyConfigFile`: a missing or unreadable file is
    /// skipped (the latter with a warning).
    public mutating func applyFile(_ path: String, limits: Limits = Limits(), read: FileReader) throws(ConfigError) {
        let text: String?
        do {
            text = try read(path)
        } catch {
            warnings.append(.unreadableFile(path: path, reason: "\(error)", at: nil))
            return
        }
        guard let text else { return }
        try apply(text, from: .file(path), limits: limits, read: read)
    }

    private mutating func applyText(_ text: String, source: ConfigLocation.Source, includedFrom: [ConfigLocation],
                                    stack: [String], limits: Limits, read: FileReader) throws(ConfigError) {
        guard text.utf8.count <= limits.maxTextBytes else {
            throw ConfigError(.tooLarge(what: "configuration text", limit: limits.maxTextBytes),
                              at: ConfigLocation(source, line: 1), includedFrom: includedFrom)
        }
        var lineNumber = 0
        for rawLine in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let location = ConfigLocation(source, line: lineNumber)
            let line = rawLine.firstIndex(of: "#").map { rawLine[..<$0] } ?? rawLine
            let tokens = line
                .split(whereSeparator: { $0.isNixWhitespace })
                .map { String(String.UnicodeScalarView($0)) }
            if tokens.isEmpty { continue }
            let illegal = ConfigError(.illegalLine(String(String.UnicodeScalarView(line))), at: location, includedFrom: includedFrom)
            guard tokens.count >= 2 else { throw illegal }
            if tokens[0] == "include" || tokens[0] == "!include" {
                guard tokens.count == 2 else { throw illegal }
                try include(tokens[1], optional: tokens[0] == "!include", at: location, source: source,
                            includedFrom: includedFrom, stack: stack, limits: limits, read: read)
                continue
            }
            guard tokens[1] == "=" else { throw illegal }
            do {
                try set(tokens[0], to: tokens[2...].joined(separator: " "), at: location)
            } catch {
                var e = error
                e.includedFrom = includedFrom
                throw e
            }
        }
    }

    private mutating func include(_ target: String, optional: Bool, at location: ConfigLocation,
                                  source: ConfigLocation.Source, includedFrom: [ConfigLocation], stack: [String],
                                  limits: Limits, read: FileReader) throws(ConfigError) {
        let base: String = if case let .file(path) = source { ConfigPath.directory(of: path) } else { "." }
        guard let path = ConfigPath.absolute(target, relativeTo: base) else {
            throw ConfigError(.notAbsolutePath(target.hasPrefix("/") ? target : base + "/" + target),
                              at: location, includedFrom: includedFrom)
        }
        guard !stack.contains(path) else {
            throw ConfigError(.includeCycle(path: path), at: location, includedFrom: includedFrom)
        }
        guard stack.count < limits.maxIncludeDepth else {
            throw ConfigError(.includeTooDeep(path: path, limit: limits.maxIncludeDepth), at: location,
                              includedFrom: includedFrom)
        }
        let text: String?
        do {
            text = try read(path)
        } catch {
            // Nix checks the file exists, then skips it silently if reading fails.
            warnings.append(.unreadableFile(path: path, reason: "\(error)", at: location))
            return
        }
        guard let text else {
            if optional { return }
            throw ConfigError(.includeNotFound(path: path), at: location, includedFrom: includedFrom)
        }
        try applyText(text, source: .file(path), includedFrom: includedFrom + [location], stack: stack + [path],
                      limits: limits, read: read)
    }
}
