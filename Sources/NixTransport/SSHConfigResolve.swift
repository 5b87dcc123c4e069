import Foundation

/// The effective options for one host after applying an ssh_config.
public struct SSHOptions: Sendable, Equatable {
    /// The name given (an alias, e.g. "builder1").
    public var host: String
    public var hostName: String
    public var user: String
    public var port: Int
    public var identityFiles: [String]
    public var identityFilesConfigured: Bool
    public var identitiesOnly: Bool
    public var userKnownHostsFiles: [String]
    public var hostKeyAlias: String?
    public var strictHostKeyChecking: StrictHostKeyChecking
    public var connectTimeout: Int?
    public var batchMode: Bool

    /// The connection target, optionally with a machines-file host key pinned.
    public func target(pinnedHostKey: String? = nil, ioTimeout: Duration? = nil) -> SSHTarget {
        SSHTarget(host: hostName, port: port, user: user, identityFiles: identityFiles,
                  identitiesOnly: identitiesOnly, pinnedHostKey: pinnedHostKey, hostKeyAlias: hostKeyAlias,
                  knownHostsFiles: userKnownHostsFiles + ["/etc/ssh/ssh_known_hosts"],
                  strictHostKeyChecking: strictHostKeyChecking,
                  connectTimeout: .seconds(connectTimeout.map { $0 > 0 ? $0 : 15 } ?? 15),
                  ioTimeout: ioTimeout, alias: host)
    }
}

extension SSHConfig {
    /// The local user's home directory.
    public static var home: String {
        ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
    }

    public static var localUser: String {
        ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
    }

    /// OpenSSH's default UserKnownHostsFile list plus the global file.
    public static func defaultKnownHostsFiles() -> [String] {
        ["\(home)/.ssh/known_hosts", "\(home)/.ssh/known_hosts2", "/etc/ssh/ssh_known_hosts"]
    }

    /// Resolves `host` (the name as typed, matched against Host patterns).
    public func resolve(host: String, localUser: String = SSHConfig.localUser,
                        home: String = SSHConfig.home) -> SSHOptions {
        var first: [String: [String]] = [:]
        var identityFiles: [String] = []
        for e in entries where e.conditions.allSatisfy({ Self.matches(host: host, patterns: $0) }) {
            if e.keyword == "identityfile" {
                identityFiles.append(contentsOf: e.arguments)
            } else if first[e.keyword] == nil {
                first[e.keyword] = e.arguments
            }
        }
        let hostName = first["hostname"].map { Self.expand($0[0], host: host, user: nil, localUser: localUser, home: home) } ?? host
        let user = first["user"]?[0] ?? localUser
        func expand(_ s: String) -> String { Self.expand(s, host: host, user: user, localUser: localUser, home: home) }
        let configured = !identityFiles.isEmpty
        let ids = configured ? identityFiles.map(expand)
            : ["id_ed25519", "id_ecdsa", "id_rsa"].map { "\(home)/.ssh/\($0)" }
        let known = first["userknownhostsfile"].map { $0.map(expand) }
            ?? ["\(home)/.ssh/known_hosts", "\(home)/.ssh/known_hosts2"]
        let strict: StrictHostKeyChecking = switch first["stricthostkeychecking"]?[0].lowercased() {
        case "no", "off": .no
        case "accept-new": .acceptNew
        default: .yes  // "ask" cannot ask here: like BatchMode, it acts as yes
        }
        return SSHOptions(
            host: host, hostName: hostName, user: user, port: first["port"].flatMap { Int($0[0]) } ?? 22,
            identityFiles: ids, identityFilesConfigured: configured,
            identitiesOnly: first["identitiesonly"]?[0].lowercased() == "yes",
            userKnownHostsFiles: known, hostKeyAlias: first["hostkeyalias"]?[0],
            strictHostKeyChecking: strict, connectTimeout: first["connecttimeout"].flatMap { Int($0[0]) },
            batchMode: first["batchmode"]?[0].lowercased() == "yes")
    }

    /// `~` and the tokens %d (home), %h (host), %r (remote user), %u (local user), %%.
    static func expand(_ s: String, host: String, user: String?, localUser: String, home: String) -> String {
        var s = s
        if s == "~" { s = home } else if s.hasPrefix("~/") { s = home + s.dropFirst() }
        guard s.contains("%") else { return s }
        var out = ""
        var it = s.makeIterator()
        while let c = it.next() {
            guard c == "%", let t = it.next() else { out.append(c); continue }
            switch t {
            case "d": out += home
            case "h": out += host
            case "r": out += user ?? localUser
            case "u": out += localUser
            case "%": out += "%"
            default: out += "%\(t)"
            }
        }
        return out
    }

    /// Reads `path` (default ~/.ssh/config) and its Includes from disk. Relative Include
    /// paths are taken from ~/.ssh, as OpenSSH does for user files. A missing top file gives
    /// an empty config.
    public static func load(path: String? = nil, home: String = SSHConfig.home) throws(SSHConfigError) -> SSHConfig {
        let file = path ?? "\(home)/.ssh/config"
        guard FileManager.default.fileExists(atPath: file) else { return SSHConfig() }
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw SSHConfigError(file: file, line: 0, message: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text, file: file) { pattern, from, line throws(SSHConfigError) in
            var p = pattern
            if p.hasPrefix("~/") { p = home + p.dropFirst() } else if !p.hasPrefix("/") { p = "\(home)/.ssh/\(p)" }
            var results: [(path: String, text: String)] = []
            for match in glob(p) {
                do { results.append((match, try String(contentsOfFile: match, encoding: .utf8))) } catch {
                    throw SSHConfigError(file: from, line: line, message: "cannot read included \(match)")
                }
            }
            return results
        }
    }

    static func glob(_ pattern: String) -> [String] {
        let dir = (pattern as NSString).deletingLastPathComponent
        let namePattern = (pattern as NSString).lastPathComponent
        guard namePattern.contains("*") || namePattern.contains("?") else {
            return FileManager.default.fileExists(atPath: pattern) ? [pattern] : []
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") && wildcardMatch($0, namePattern) }.sorted().map { "\(dir)/\($0)" }
    }
}
