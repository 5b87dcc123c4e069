/// A store reference as Nix writes it (`--store`, `substituters`, the machines file):
/// `ssh-ng://[user@]host[:port]?params`, `ssh://...`, `unix://PATH`, `daemon`, `local`,
/// `local?root=DIR`, `file://DIR`, `http(s)://...`, or an absolute path (a local chroot store).
public struct StoreURI: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Hashable {
        case sshNG = "ssh-ng"
        case ssh
        case unix
        case daemon
        case local
        case file
        case http
        case https
        case auto
    }

    public var scheme: Scheme
    /// `user` for ssh schemes, nil when not given.
    public var user: String?
    /// Host for ssh schemes (without port); path for unix/file/local-with-path.
    public var authority: String
    /// Port for ssh schemes, if given (Nix 2.8 cannot take one in the URI; newer Nix can).
    public var port: Int?
    /// Query parameters in order (`ssh-key`, `remote-program`, `remote-store`,
    /// `base64-ssh-public-host-key`, `root`, ...), percent-decoded.
    public var parameters: [(name: String, value: String)]

    public init(scheme: Scheme, user: String? = nil, authority: String = "", port: Int? = nil,
                parameters: [(name: String, value: String)] = []) {
        self.scheme = scheme
        self.user = user
        self.authority = authority
        self.port = port
        self.parameters = parameters
    }

    /// The value of a query parameter (the last one wins, as in Nix).
    public subscript(parameter name: String) -> String? {
        parameters.last { $0.name == name }?.value
    }

    /// True for schemes that reach a remote machine over SSH.
    public var isSSH: Bool { scheme == .sshNG || scheme == .ssh }

    /// `user@host` or `host`, as passed to ssh.
    public var sshHost: String { (user.map { $0 + "@" } ?? "") + authority }

    public static func == (a: StoreURI, b: StoreURI) -> Bool { a.description == b.description }
    public func hash(into h: inout Swift.Hasher) { h.combine(description) }

    /// Parses a store reference; errors name the text and what was expected.
    public init(parsing text: String) throws(StoreURIError) {
        let (base, query) = StoreURI.splitQuery(text)
        let params = try StoreURI.parseQuery(query, in: text)
        if base.hasPrefix("/") {
            self.init(scheme: .local, authority: "", parameters: [("root", base)] + params)
            return
        }
        guard let sep = StoreURI.findSchemeSeparator(base) else {
            switch base {
            case "daemon": self.init(scheme: .daemon, parameters: params)
            case "local": self.init(scheme: .local, parameters: params)
            case "auto": self.init(scheme: .auto, parameters: params)
            default: throw .unsupported(text)
            }
            return
        }
        let schemeText = String(base[..<sep.lowerBound])
        guard let scheme = Scheme(rawValue: schemeText) else { throw .unknownScheme(text, schemeText) }
        var rest = String(base[sep.upperBound...])
        switch scheme {
        case .ssh, .sshNG:
            var user: String?
            if let at = rest.lastIndex(of: "@") {
                user = String(rest[..<at])
                rest = String(rest[rest.index(after: at)...])
                if user!.isEmpty { throw .badHost(text, "empty user name before '@'") }
            }
            var port: Int?
            if rest.hasPrefix("[") {
                // [v6addr]:port
                guard let close = rest.firstIndex(of: "]") else { throw .badHost(text, "unterminated '['") }
                let after = rest[rest.index(after: close)...]
                if after.hasPrefix(":") { port = Int(after.dropFirst()) }
                rest = String(rest[rest.index(after: rest.startIndex)..<close])
            } else if let colon = rest.lastIndex(of: ":") {
                let p = rest[rest.index(after: colon)...]
                guard let n = Int(p), n > 0, n < 65536 else { throw .badHost(text, "invalid port '\(p)'") }
                port = n
                rest = String(rest[..<colon])
            }
            guard !rest.isEmpty else { throw .badHost(text, "missing host name") }
            if rest.contains("/") { throw .badHost(text, "a host name cannot contain '/'") }
            self.init(scheme: scheme, user: user, authority: rest, port: port, parameters: params)
        case .unix, .file, .http, .https:
            self.init(scheme: scheme, authority: rest, parameters: params)
        case .local, .daemon, .auto:
            throw .unsupported(text)
        }
    }

    public var description: String {
        var s: String
        switch scheme {
        case .daemon, .local, .auto: s = scheme.rawValue
        case .ssh, .sshNG:
            s = scheme.rawValue + "://" + sshHost
            if let port { s += ":\(port)" }
        default: s = scheme.rawValue + "://" + authority
        }
        if !parameters.isEmpty {
            s += "?" + parameters.map { $0.name + "=" + StoreURI.percentEncode($0.value) }.joined(separator: "&")
        }
        return s
    }

    static func findSchemeSeparator(_ s: String) -> Range<String.Index>? {
        var i = s.startIndex
        while i < s.endIndex {
            if s[i...].hasPrefix("://") { return i..<s.index(i, offsetBy: 3) }
            i = s.index(after: i)
        }
        return nil
    }

    static func splitQuery(_ text: String) -> (String, String?) {
        guard let q = text.firstIndex(of: "?") else { return (text, nil) }
        return (String(text[..<q]), String(text[text.index(after: q)...]))
    }

    static func parseQuery(_ query: String?, in text: String) throws(StoreURIError) -> [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        var out: [(name: String, value: String)] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            guard let eq = pair.firstIndex(of: "=") else { throw .badParameter(text, String(pair)) }
            let name = String(pair[..<eq])
            guard let value = percentDecode(pair[pair.index(after: eq)...]) else {
                throw .badParameter(text, String(pair))
            }
            out.append((name, value))
        }
        return out
    }

    static func percentDecode(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%") {
                guard it.count >= 2, let v = try? Base16.decode(String(decoding: it.prefix(2), as: UTF8.self)) else { return nil }
                bytes += v
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for c in s.utf8 {
            if StorePath.isNameCharacter(c) || c == UInt8(ascii: "/") || c == UInt8(ascii: ":") || c == UInt8(ascii: "~") {
                out.unicodeScalars.append(Unicode.Scalar(c))
            } else {
                out += "%" + Base16.encode([c]).uppercased()
            }
        }
        return out
    }
}

/// Why a store reference was refused.
public enum StoreURIError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownScheme(String, String)
    case unsupported(String)
    case badHost(String, String)
    case badParameter(String, String)

    public var description: String {
        switch self {
        case let .unknownScheme(t, s): return "don't know how to open Nix store '\(t)' (unknown scheme '\(s)')"
        case let .unsupported(t): return "don't know how to open Nix store '\(t)'"
        case let .badHost(t, why): return "invalid store URI '\(t)': \(why)"
        case let .badParameter(t, p): return "invalid store URI '\(t)': bad parameter '\(p)' (expected NAME=VALUE)"
        }
    }
}
