/// What may stand in a narinfo's free-text fields. A narinfo is one `Key: value` per line,
/// so a value with a line break (or any control character) would add lines of its own
/// choosing (`NarHash:`, `CA:`) to what is rendered; such values are refused where they
/// enter (parsing, the worker protocol, the narinfo cache) and never rendered.
public enum NarInfoText {
    /// Why `sig` is not a `keyname:base64` signature, or nil when it is one: a non-empty
    /// name of printable ASCII without spaces or colons, then a non-empty standard base64
    /// text (Nix's `name:base64` key and signature form).
    public static func signatureProblem(_ sig: some StringProtocol) -> String? {
        let u = Array(sig.utf8)
        guard let colon = u.firstIndex(of: UInt8(ascii: ":")) else {
            return "signature '\(printable(sig))' is not of the form 'keyname:base64'"
        }
        guard colon > 0, u[..<colon].allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            return "signature '\(printable(sig))' has an empty or unprintable key name"
        }
        let body = u[(colon + 1)...]
        guard !body.isEmpty, body.count % 4 == 0, body.allSatisfy(isBase64) else {
            return "signature '\(printable(sig))' is not valid base64 after its key name"
        }
        return nil
    }

    /// True when `value` can stand after `Key: ` on a narinfo line: no control characters
    /// (which includes line breaks) and no DEL.
    public static func isText(_ value: some StringProtocol) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7f }
    }

    /// `s` with control characters shown as `\u{..}`, for messages.
    public static func printable(_ s: some StringProtocol) -> String {
        var out = ""
        for scalar in String(s).unicodeScalars.prefix(200) {
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func isBase64(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39)
            || b == UInt8(ascii: "+") || b == UInt8(ascii: "/") || b == UInt8(ascii: "=")
    }
}

extension PathInfo {
    /// The info without signatures that are not `keyname:base64` (they could never verify,
    /// and one with a line break would inject narinfo lines). Nix ignores signatures that do
    /// not verify; so does this, but also never stores or forwards them.
    public var withWellFormedSignatures: PathInfo {
        guard sigs.contains(where: { NarInfoText.signatureProblem($0) != nil }) else { return self }
        var out = self
        out.sigs = sigs.filter { NarInfoText.signatureProblem($0) == nil }
        return out
    }
}

extension NarInfo {
    /// Why this narinfo cannot be rendered so that parsing gives it back, or nil when it
    /// can: free-text fields with control characters, a malformed signature, an empty URL,
    /// an empty (rather than absent) system, a zero NAR size.
    public var renderProblem: String? {
        if url.isEmpty || !NarInfoText.isText(url) { return "URL '\(NarInfoText.printable(url))' is empty or has control characters" }
        if compression.isEmpty || !NarInfoText.isText(compression) {
            return "compression '\(NarInfoText.printable(compression))' is empty or has control characters"
        }
        if let system, system.isEmpty || !NarInfoText.isText(system) {
            return "system '\(NarInfoText.printable(system))' is empty or has control characters"
        }
        if pathInfo.narSize == 0 { return "its NAR size is not known" }
        for sig in pathInfo.sigs.sorted() {
            if let problem = NarInfoText.signatureProblem(sig) { return problem }
        }
        return nil
    }
}
