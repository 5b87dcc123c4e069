/// Attributes Nix reads from a derivation's environment, or from its `__json` structured
/// attributes when present (Nix's `ParsedDerivation`).
extension Derivation {
    /// The parsed `__json` object, or nil when the derivation does not use structured attributes.
    func structuredAttrs() throws(DerivationError) -> [String: JSONValue]? {
        guard let text = env["__json"] else { return nil }
        var p = JSONParser(bytes: Array(text.utf8))
        do {
            guard case let .object(o) = try p.document() else { throw DerivationError.structuredAttrs("not a JSON object") }
            return o
        } catch let e as DerivationError {
            throw e
        } catch {
            throw .structuredAttrs("\(error)")
        }
    }

    /// Features a builder must have (`requiredSystemFeatures`, space separated in `env`, a
    /// list in `__json`), plus `ca-derivations` when output paths are not known in advance.
    public func requiredSystemFeatures() throws(DerivationError) -> Set<String> {
        var res = Set(try stringsAttribute("requiredSystemFeatures") ?? [])
        if !(try type().hasKnownOutputPaths) { res.insert("ca-derivations") }
        return res
    }

    /// `preferLocalBuild` (default false).
    public func preferLocalBuild() throws(DerivationError) -> Bool {
        try boolAttribute("preferLocalBuild", default: false)
    }

    /// `allowSubstitutes` (default true).
    public func allowSubstitutes() throws(DerivationError) -> Bool {
        try boolAttribute("allowSubstitutes", default: true)
    }

    /// A Boolean attribute: `"1"` in `env`, a JSON Boolean in `__json`.
    public func boolAttribute(_ name: String, default def: Bool) throws(DerivationError) -> Bool {
        if let attrs = try structuredAttrs() {
            guard let v = attrs[name] else { return def }
            guard case let .bool(b) = v else { throw .attributeType(name: name, expected: "a Boolean") }
            return b
        }
        guard let v = env[name] else { return def }
        return v == "1"
    }

    /// A list attribute: whitespace-separated in `env`, a JSON list of strings in `__json`.
    public func stringsAttribute(_ name: String) throws(DerivationError) -> [String]? {
        if let attrs = try structuredAttrs() {
            guard let v = attrs[name] else { return nil }
            guard case let .array(items) = v else { throw .attributeType(name: name, expected: "a list of strings") }
            var res: [String] = []
            for item in items {
                guard case let .string(s) = item else { throw .attributeType(name: name, expected: "a list of strings") }
                res.append(s)
            }
            return res
        }
        guard let v = env[name] else { return nil }
        // Nix's tokenizeString: separators space, tab, newline, carriage return.
        return v.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)
    }
}
