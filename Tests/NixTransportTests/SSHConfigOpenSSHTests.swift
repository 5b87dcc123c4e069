import Foundation
import NixTransport
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Our resolution of ssh_config files compared with what OpenSSH's own client makes of them
/// (`ssh -G -F FILE [-l USER] [-p PORT] HOST`).
@Suite("SSHConfig versus ssh -G", .timeLimit(.minutes(2)))
struct SSHConfigOpenSSHTests {
    static var canRun: Bool { TestSupport.has("ssh") }

    /// The keywords compared; ssh -G leaves out those that are unset.
    static let keywords = ["hostname", "user", "port", "identityfile", "userknownhostsfile", "globalknownhostsfile",
                           "proxyjump", "proxycommand", "serveraliveinterval", "serveralivecountmax", "connecttimeout",
                           "stricthostkeychecking", "hostkeyalias", "identitiesonly", "batchmode"]

    static func passwd() -> (user: String, home: String) {
        let pw = getpwuid(getuid())!
        return (String(cString: pw.pointee.pw_name), String(cString: pw.pointee.pw_dir))
    }

    static func openSSH(_ file: String, _ args: [String]) throws -> [String: String] {
        let out = try TestSupport.run(["ssh", "-G", "-F", file] + args, input: Data())
        var result: [String: String] = [:]
        for line in out.text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2, keywords.contains(parts[0]) else { continue }
            if parts[0] == "identityfile" {
                // Only files a config names: the built-in defaults differ on purpose.
                if parts[1].hasPrefix("~/.ssh/id_") { continue }
                result[parts[0], default: ""] += (result[parts[0]] == nil ? "" : " ") + parts[1]
            } else {
                result[parts[0]] = parts[1]
            }
        }
        return result
    }

    /// Our options in `ssh -G`'s words.
    static func ours(_ o: SSHOptions) -> [String: String] {
        func raw(_ k: String) -> String? { o.settings.first { $0.keyword == k }?.arguments.joined(separator: " ") }
        var r: [String: String] = [
            "hostname": o.hostName, "user": o.user, "port": String(o.port),
            "userknownhostsfile": o.userKnownHostsFiles.joined(separator: " "),
            "globalknownhostsfile": o.globalKnownHostsFiles.joined(separator: " "),
            "serveraliveinterval": String(o.serverAliveInterval), "serveralivecountmax": String(o.serverAliveCountMax),
            "connecttimeout": o.connectTimeout.map(String.init) ?? "none",
            "identitiesonly": o.identitiesOnly ? "yes" : "no", "batchmode": o.batchMode ? "yes" : "no",
        ]
        r["stricthostkeychecking"] = switch raw("stricthostkeychecking")?.lowercased() {
        case nil, "ask": "ask"
        case "yes", "true": "true"
        case "no", "off", "false": "false"
        case let other?: other
        }
        let ids = o.settings.filter { $0.keyword == "identityfile" }.map { $0.arguments[0] }
        if !ids.isEmpty { r["identityfile"] = ids.joined(separator: " ") }
        if let hops = o.proxyJump { r["proxyjump"] = hops.map(\.description).joined(separator: ",") }
        if let c = raw("proxycommand"), c.lowercased() != "none" { r["proxycommand"] = c }
        if let a = o.hostKeyAlias { r["hostkeyalias"] = a }
        return r
    }

    static func compare(_ config: String, dir: URL, queries: [[String]]) throws {
        let file = dir.appendingPathComponent("config-\(abs(config.hashValue))").path
        try config.write(toFile: file, atomically: true, encoding: .utf8)
        let parsed = try SSHConfig.load(path: file)
        let (user, home) = passwd()
        for q in queries {
            var u: String?, p: Int?, host = ""
            var i = 0
            while i < q.count {
                switch q[i] {
                case "-l": u = q[i + 1]; i += 2
                case "-p": p = Int(q[i + 1]); i += 2
                default: host = q[i]; i += 1
                }
            }
            var expected = try openSSH(file, q)
            let got = ours(parsed.resolve(host: host, user: u, port: p, localUser: user, home: home))
            // Debian's client (only) turns BatchMode into ServerAliveInterval 300.
            if got["batchmode"] == "yes", got["serveraliveinterval"] == "0", expected["serveraliveinterval"] == "300" {
                expected["serveraliveinterval"] = "0"
            }
            for k in keywords where expected[k] != got[k] {
                Issue.record("\(q.joined(separator: " ")): \(k): ssh -G says \(expected[k] ?? "(unset)"), we say \(got[k] ?? "(unset)")")
            }
            #expect(expected["hostname"] != nil)
        }
    }

    @Test(.tags(.hostTools), .enabled(if: canRun, "needs OpenSSH's ssh"))
    func matchIncludeFinalAndProxiesAgreeWithOpenSSH() throws {
        let dir = try TestSupport.temporaryDirectory("nb-sshg")
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = dir.path
        try "Port 7001\nHost *\n  User fromnever\n".write(toFile: "\(d)/inc-a.conf", atomically: true, encoding: .utf8)
        try "IdentityFile /k/%h-%r\nHost *\n  BatchMode yes\n".write(toFile: "\(d)/inc-b.conf", atomically: true, encoding: .utf8)
        try Self.compare("""
        # Match sees the HostName set so far; exec runs with %h expanded; final re-reads.
        Host alias1 ALIAS2
          HostName Real1.example
          ControlMaster auto
          ControlPath ~/.ssh/cm-%r@%h:%p
          AddKeysToAgent yes
        Match host real1.example !user bob
          Include \(d)/inc-b.conf
          ServerAliveInterval 1m
        Match originalhost alias1 user bob
          Port 2201
        Host nomatch
          Include \(d)/inc-a.conf
        Match exec "test %h = real1.example" localuser \(Self.passwd().user)
          ConnectTimeout 9
          ProxyJump j1,bob@j2:2200
        Match exec false
          IdentityFile /never
        Match !exec "exit 3" host real*
          HostKeyAlias real-alias
        Match final host real1.example
          GlobalKnownHostsFile /g1 /g2
        Host real1.example
          ServerAliveCountMax 7
        Host j*
          ProxyCommand none
          ProxyJump none
        Match canonical
          Port 1234
        Match all
          ProxyCommand ssh -W %h:%p "jump host" %r %n %%
          StrictHostKeyChecking accept-new
          UserKnownHostsFile ~/kh1 /tmp/kh-%h-%p-%r
        """, dir: dir, queries: [["alias1"], ["-l", "bob", "alias1"], ["j1"], ["other"], ["-p", "99", "real1.example"],
                                 ["ALIAS1"], ["ALIAS2"], ["-l", "carol", "real1.example"]])
    }

    @Test(.tags(.hostTools), .enabled(if: canRun, "needs OpenSSH's ssh"))
    func firstValueWinsAndListsAgreeWithOpenSSH() throws {
        let dir = try TestSupport.temporaryDirectory("nb-sshg")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.compare("""
        Host b* !bad*
          User=nix
          IdentityFile ~/.ssh/b1
          IdentityFile ~/.ssh/b2
          StrictHostKeyChecking no
        Host b1
          User other
          Port 2222
          IdentityFile ~/.ssh/b1
          IdentityFile "/keys/with space"
          IdentitiesOnly yes
          ConnectTimeout 1m30s
          ServerAliveInterval 15
          ServerAliveCountMax 2
        Match user nix host b2
          ProxyJump ssh://jump@bastion:2022
          ProxyCommand ignored because ProxyJump came first
        Host *
          Port 22
          StrictHostKeyChecking yes
          BatchMode yes
          UserKnownHostsFile none
        """, dir: dir, queries: [["b1"], ["b2"], ["-l", "root", "b2"], ["bad1"], ["x"]])
    }
}
