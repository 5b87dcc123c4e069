// `Match` lines of ssh_config, evaluated as OpenSSH's match_cfg_line does.
#if canImport(Glibc)
import Glibc
#endif

/// One criterion of a `Match` line, e.g. `host a,b`, `!user root`, `exec "test -f x"`.
public struct SSHMatchCriterion: Sendable, Equatable {
    /// Lower case: all, canonical, final, host, originalhost, user, localuser, exec, or an
    /// attribute the libssh2 transport cannot evaluate (localnetwork, tagged...).
    public var attribute: String
    public var negated: Bool
    public var argument: String?

    static let supported: Set<String> = ["all", "canonical", "final", "host", "originalhost", "user", "localuser", "exec"]
    static let known: Set<String> = supported.union(["localnetwork", "tagged"])

    var isSupported: Bool { Self.supported.contains(attribute) }

    static func parse(_ args: [String], fail: (String) -> SSHConfigError) throws(SSHConfigError) -> [SSHMatchCriterion] {
        var result: [SSHMatchCriterion] = []
        var i = 0
        while i < args.count {
            var word = args[i]
            i += 1
            let negated = word.hasPrefix("!")
            if negated { word.removeFirst() }
            let attribute = word.lowercased()
            guard known.contains(attribute) else { throw fail("unsupported Match attribute \(word)") }
            if attribute == "all" {
                if result.count > 1 || i < args.count { throw fail("'all' cannot be combined with other Match attributes") }
                result.append(SSHMatchCriterion(attribute: attribute, negated: negated, argument: nil))
                continue
            }
            if attribute == "canonical" || attribute == "final" {
                result.append(SSHMatchCriterion(attribute: attribute, negated: negated, argument: nil))
                continue
            }
            guard i < args.count else { throw fail("missing Match criteria for \(word)") }
            result.append(SSHMatchCriterion(attribute: attribute, negated: negated, argument: args[i]))
            i += 1
        }
        guard !result.isEmpty else { throw fail("one or more attributes required for Match") }
        return result
    }
}

/// What a `Match` line is evaluated against.
struct SSHMatchContext {
    /// HostName so far (with %h expanded), else the host as given.
    var host: String
    var originalHost: String
    /// User so far, else the local user.
    var remoteUser: String
    var localUser: String
    var home: String
    var port: Int
    /// True on the final pass (after `Match final` or CanonicalizeHostname).
    var finalPass: Bool
    var runExec: (String) -> Bool
}

extension SSHConfig {
    /// Whether a `Match` line applies; sets `wantFinal` for a non-negated `final`.
    static func evaluate(_ criteria: [SSHMatchCriterion], _ c: SSHMatchContext, wantFinal: inout Bool) -> Bool {
        var result = true
        for criterion in criteria {
            let r: Bool
            switch criterion.attribute {
            case "all":
                return result && !criterion.negated
            case "canonical", "final":
                if criterion.attribute == "final" && !criterion.negated { wantFinal = true }
                r = c.finalPass
            case "host":
                r = matchesList(c.host, list: criterion.argument ?? "", caseInsensitive: true)
            case "originalhost":
                r = matchesList(c.originalHost, list: criterion.argument ?? "", caseInsensitive: true)
            case "user":
                r = matchesList(c.remoteUser, list: criterion.argument ?? "", caseInsensitive: false)
            case "localuser":
                r = matchesList(c.localUser, list: criterion.argument ?? "", caseInsensitive: false)
            case "exec":
                // Skipped once an earlier criterion failed, as OpenSSH does.
                guard result else { continue }
                r = c.runExec(expandExec(criterion.argument ?? "", c))
            default:
                r = !criterion.negated  // cannot be evaluated: never applies
                result = false
            }
            if r == criterion.negated { result = false }
        }
        return result
    }

    /// The tokens OpenSSH expands in `Match exec`: %h %n %p %r %u %d %l %L %i %%.
    static func expandExec(_ s: String, _ c: SSHMatchContext) -> String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, 255)
        let thisHost = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let tokens: [Character: String] = [
            "h": c.host, "n": c.originalHost, "p": String(c.port), "r": c.remoteUser, "u": c.localUser,
            "d": c.home, "l": thisHost, "L": String(thisHost.prefix { $0 != "." }), "i": String(getuid()), "%": "%",
        ]
        return percentExpand(s, tokens)
    }

    static func percentExpand(_ s: String, _ tokens: [Character: String]) -> String {
        guard s.contains("%") else { return s }
        var out = ""
        var it = s.makeIterator()
        while let ch = it.next() {
            guard ch == "%", let t = it.next() else { out.append(ch); continue }
            if let v = tokens[t] { out += v } else { out += "%\(t)" }
        }
        return out
    }

    /// Runs a `Match exec` command as OpenSSH does: `$SHELL -c CMD` (else /bin/sh), stdin
    /// and stdout on /dev/null, stderr inherited; true when it exits 0. A command still
    /// running after `timeout` seconds is killed and counts as not matching.
    public static func runMatchExec(_ command: String, timeout: Int = 30) -> Bool {
        let shell = Posix.environment("SHELL").flatMap { access($0, X_OK) == 0 ? $0 : nil } ?? "/bin/sh"
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard devnull >= 0 else { return false }
        defer { close(devnull) }
        guard case let .success(pid) = Posix.spawn([shell, "-c", command], redirect: [(devnull, 0), (devnull, 1)]) else { return false }
        let deadline = ContinuousClock.now + .seconds(timeout)
        var status: Int32 = 0
        while true {
            let r = system_waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 { return false }
            if ContinuousClock.now > deadline {
                Posix.terminate(pid, grace: .zero)
                return false
            }
            usleep(2000)
        }
        return Posix.exitCode(status) == 0
    }
}

/// One ProxyJump hop: `[user@]host[:port]` or `ssh://[user@]host[:port]`.
public struct SSHJumpSpec: Sendable, Equatable, CustomStringConvertible {
    public var user: String?
    public var host: String
    public var port: Int?

    public init?(_ text: String) {
        var s = Substring(text)
        if s.hasPrefix("ssh://") { s = s.dropFirst(6) }
        if let at = s.lastIndex(of: "@") {
            user = String(s[..<at])
            s = s[s.index(after: at)...]
            if user!.isEmpty { return nil }
        }
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            host = String(s[s.index(after: s.startIndex)..<close])
            s = s[s.index(after: close)...]
            if s.hasPrefix(":") {
                guard let p = Int(s.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            } else if !s.isEmpty { return nil }
        } else if let colon = s.lastIndex(of: ":"), s.firstIndex(of: ":") == colon {
            host = String(s[..<colon])
            guard let p = Int(s[s.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            host = String(s)
        }
        if host.isEmpty || host.contains(where: { $0 == " " || $0 == "/" }) { return nil }
    }

    public var description: String {
        (user.map { "\($0)@" } ?? "") + (host.contains(":") ? "[\(host)]" : host) + (port.map { ":\($0)" } ?? "")
    }
}
