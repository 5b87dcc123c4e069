import Foundation

/// One effective ssh_config value and where it came from.
public struct SSHSetting: Sendable, Equatable {
    /// Lower case, as `ssh -G` prints it.
    public var keyword: String
    public var arguments: [String]
    public var file: String
    /// 0 when the value did not come from a file (the store URI, a ProxyJump list).
    public var line: Int

    /// "file:line", or the source when there is no line.
    public var origin: String { line > 0 ? "\(file):\(line)" : file }
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
        ["\(home)/.ssh/known_hosts", "\(home)/.ssh/known_hosts2", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]
    }

    /// Resolves `host` (the name as typed) as `ssh [-l user] [-p port] host` would: the
    /// lines are walked in order, each `Host`/`Match` line deciding whether the following
    /// ones apply, the first value obtained for a keyword wins (IdentityFile accumulates),
    /// and a second pass runs when a `Match final` line or CanonicalizeHostname asks for it.
    /// `user` and `port` (from the store URI) count as command-line options: they win and
    /// `Match user` sees them. `runExec` runs `Match exec` commands.
    public func resolve(host: String, user: String? = nil, port: Int? = nil,
                        localUser: String = SSHConfig.localUser, home: String = SSHConfig.home,
                        runExec: @escaping (String) -> Bool = { SSHConfig.runMatchExec($0) }) -> SSHOptions {
        resolve(host: host, user: user, port: port, origin: "store URI", preset: [], localUser: localUser, home: home,
                runExec: runExec, depth: 0)
    }

    func resolve(host: String, user: String?, port: Int?, origin given: String, preset: [SSHSetting], localUser: String, home: String,
                 runExec: @escaping (String) -> Bool, depth: Int) -> SSHOptions {
        var walk = SSHConfigWalk(localUser: localUser, home: home, runExec: runExec)
        if let user { walk.set(SSHSetting(keyword: "user", arguments: [user], file: given, line: 0)) }
        if let port { walk.set(SSHSetting(keyword: "port", arguments: [String(port)], file: given, line: 0)) }
        preset.forEach { walk.set($0) }
        var active = true
        walk.run(items, hostArg: host, originalHost: host, finalPass: false, active: &active, neverMatch: false)
        // OpenSSH lower-cases the name it dials (after the first pass).
        let hostName = (walk.first["hostname"].map { Self.percentExpand($0.arguments[0], ["h": host, "%": "%"]) } ?? host).lowercased()
        let canonicalize = walk.first["canonicalizehostname"].map { !["no", "false"].contains($0.arguments[0].lowercased()) } ?? false
        if walk.wantFinal || canonicalize {
            // OpenSSH re-reads the files with the host name now known (Host lines match it).
            let origin = walk.first["hostname"]
            walk.first["hostname"] = SSHSetting(keyword: "hostname", arguments: [hostName],
                                                file: origin?.file ?? "host name", line: origin?.line ?? 0)
            active = true
            walk.run(items, hostArg: hostName, originalHost: host, finalPass: true, active: &active, neverMatch: false)
        }
        var options = walk.options(host: host, hostName: hostName)
        options.warnings = warnings
        if let hops = options.proxyJump, let last = hops.last {
            if depth >= 8 {
                options.warnings.append("ProxyJump nested more than 8 deep at \(host); not followed")
                options.proxyJump = nil
            } else {
                // Like `ssh -J h1,...,hn-1 -W host:port hn`: the earlier hops reach the last one.
                let before = hops.dropLast().map { $0.description }.joined(separator: ",")
                let jumpPreset = before.isEmpty ? [] : [SSHSetting(keyword: "proxyjump", arguments: [before],
                                                                   file: "ProxyJump of \(host)", line: 0)]
                options.jumpHost = [resolve(host: last.host, user: last.user, port: last.port, origin: "ProxyJump of \(host)",
                                            preset: jumpPreset,
                                            localUser: localUser, home: home, runExec: runExec, depth: depth + 1)]
            }
        }
        return options
    }

    /// Reads `path` (else ~/.ssh/config, then `system`, as OpenSSH does without -F) and its
    /// Includes from disk. Relative Include paths are taken from ~/.ssh for user files and
    /// /etc/ssh for the system file. A missing file reads as empty.
    public static func load(path: String? = nil, home: String = SSHConfig.home,
                            system: String? = "/etc/ssh/ssh_config") throws(SSHConfigError) -> SSHConfig {
        var config = try loadFile(path ?? "\(home)/.ssh/config", home: home, base: "\(home)/.ssh")
        if path == nil, let system {
            config.append(try loadFile(system, home: home, base: "/etc/ssh"))
        }
        return config
    }

    static func loadFile(_ file: String, home: String, base: String) throws(SSHConfigError) -> SSHConfig {
        guard FileManager.default.fileExists(atPath: file) else { return SSHConfig() }
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw SSHConfigError(file: file, line: 0, message: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text, file: file) { pattern, from, line throws(SSHConfigError) in
            var p = pattern
            if p.hasPrefix("~/") { p = home + p.dropFirst() } else if !p.hasPrefix("/") { p = "\(base)/\(p)" }
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

/// One walk over the lines, collecting the first value of each keyword.
struct SSHConfigWalk {
    let localUser: String
    let home: String
    let runExec: (String) -> Bool
    var first: [String: SSHSetting] = [:]
    /// Keywords in the order their values were obtained.
    var order: [String] = []
    var identityFiles: [SSHSetting] = []
    var wantFinal = false

    init(localUser: String, home: String, runExec: @escaping (String) -> Bool) {
        self.localUser = localUser
        self.home = home
        self.runExec = runExec
    }

    mutating func set(_ s: SSHSetting) {
        switch s.keyword {
        case "identityfile":
            if !identityFiles.contains(where: { $0.arguments == s.arguments }) { identityFiles.append(s) }
        case "proxyjump", "proxycommand":
            // The two compete: whichever comes first prevents the other.
            if first["proxyjump"] == nil && first["proxycommand"] == nil { first[s.keyword] = s; order.append(s.keyword) }
        default:
            if first[s.keyword] == nil { first[s.keyword] = s; order.append(s.keyword) }
        }
    }

    /// OpenSSH's read_config_file: `active` is whether lines apply; an Include inside a
    /// block that does not apply is read with nothing in it applying.
    mutating func run(_ items: [SSHConfig.Item], hostArg: String, originalHost: String, finalPass: Bool,
                      active: inout Bool, neverMatch: Bool) {
        for item in items {
            switch item {
            case let .host(line):
                active = !neverMatch && SSHConfig.matches(host: hostArg, patterns: line.arguments)
            case let .match(_, criteria):
                let context = SSHMatchContext(
                    host: finalPass ? (first["hostname"]?.arguments[0] ?? hostArg)
                        : first["hostname"].map { SSHConfig.percentExpand($0.arguments[0], ["h": hostArg, "%": "%"]) } ?? hostArg,
                    originalHost: originalHost, remoteUser: first["user"]?.arguments[0] ?? localUser,
                    localUser: localUser, home: home, port: first["port"].flatMap { Int($0.arguments[0]) } ?? 22,
                    finalPass: finalPass, runExec: runExec)
                let matched = SSHConfig.evaluate(criteria, context, wantFinal: &wantFinal)
                active = !neverMatch && matched
            case let .include(_, files):
                let outer = active
                for file in files {
                    var inner = !(neverMatch || !outer)
                    run(file.items, hostArg: hostArg, originalHost: originalHost, finalPass: finalPass,
                        active: &inner, neverMatch: neverMatch || !outer)
                }
                active = outer
            case let .option(line):
                if active {
                    set(SSHSetting(keyword: line.keyword, arguments: line.arguments, file: line.file, line: line.line))
                }
            }
        }
    }

    func options(host: String, hostName: String) -> SSHOptions {
        func value(_ k: String) -> String? { first[k]?.arguments[0] }
        let user = value("user") ?? localUser
        let port = value("port").flatMap { Int($0) } ?? 22
        let alias = value("hostkeyalias")
        let tokens: [Character: String] = ["h": hostName, "n": host, "p": String(port), "r": user, "u": localUser,
                                           "d": home, "k": alias ?? hostName, "i": String(getuid()), "%": "%"]
        func expand(_ s: String) -> String {
            var s = s
            if s == "~" { s = home } else if s.hasPrefix("~/") { s = home + s.dropFirst() }
            return SSHConfig.percentExpand(s, tokens)
        }
        let configured = !identityFiles.isEmpty
        let ids = configured ? identityFiles.map { expand($0.arguments[0]) }
            : ["id_ed25519", "id_ecdsa", "id_rsa"].map { "\(home)/.ssh/\($0)" }
        let strict: StrictHostKeyChecking = switch value("stricthostkeychecking")?.lowercased() {
        case "no", "off", "false": .no
        case "accept-new": .acceptNew
        default: .yes  // "ask" cannot ask here: like BatchMode, it acts as yes
        }
        var jump: [SSHJumpSpec]? = nil
        if let j = value("proxyjump"), j.lowercased() != "none" {
            jump = j.split(separator: ",").compactMap { SSHJumpSpec(String($0)) }
        }
        var command: String? = nil
        if let c = value("proxycommand"), c.lowercased() != "none" { command = SSHConfig.percentExpand(c, tokens) }
        func yes(_ k: String) -> Bool { ["yes", "true"].contains(value(k)?.lowercased() ?? "") }
        let settings = order.compactMap { first[$0] } + identityFiles
        var options = SSHOptions(
            host: host, hostName: hostName, user: user, port: port,
            identityFiles: ids, identityFilesConfigured: configured, identitiesOnly: yes("identitiesonly"),
            userKnownHostsFiles: first["userknownhostsfile"].map { $0.arguments.map(expand) }
                ?? ["\(home)/.ssh/known_hosts", "\(home)/.ssh/known_hosts2"],
            globalKnownHostsFiles: first["globalknownhostsfile"].map { $0.arguments.map(expand) }
                ?? ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"],
            hostKeyAlias: alias, strictHostKeyChecking: strict,
            connectTimeout: value("connecttimeout").flatMap { $0 == "none" ? nil : SSHConfig.parseTime($0) },
            batchMode: yes("batchmode"),
            serverAliveInterval: value("serveraliveinterval").flatMap(SSHConfig.parseTime) ?? 0,
            serverAliveCountMax: value("serveralivecountmax").flatMap { Int($0) } ?? 3,
            proxyJump: jump, proxyCommand: command, settings: settings)
        options.hashKnownHosts = yes("hashknownhosts")
        return options
    }
}
