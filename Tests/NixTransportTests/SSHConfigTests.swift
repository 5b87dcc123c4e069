import Foundation
import NixTransport
import Testing
import TestSupport

@Suite("SSHConfig", .timeLimit(.minutes(1)))
struct SSHConfigTests {
    let home = "/home/alice"

    @Test func firstValueWinsAndIdentityFilesAccumulate() throws {
        let config = try SSHConfig.parse("""
        # builders
        Host builder1 builder2
          HostName 10.0.0.%h
          Port 2222
          IdentityFile ~/.ssh/builder
        Host builder*
          User nix
          Port 22
          IdentityFile "~/.ssh/other key"
        Host *
          User root
          StrictHostKeyChecking accept-new
          UserKnownHostsFile ~/.ssh/kh /etc/kh
          ConnectTimeout 7
        """, file: "cfg")
        let o = config.resolve(host: "builder1", localUser: "alice", home: home)
        #expect(o.hostName == "10.0.0.builder1")
        #expect(o.port == 2222)
        #expect(o.user == "nix")
        #expect(o.identityFiles == ["/home/alice/.ssh/builder", "/home/alice/.ssh/other key"])
        #expect(o.strictHostKeyChecking == .acceptNew)
        #expect(o.userKnownHostsFiles == ["/home/alice/.ssh/kh", "/etc/kh"])
        #expect(o.connectTimeout == 7)
        let t = o.target(pinnedHostKey: "AAAA")
        #expect(t.host == "10.0.0.builder1" && t.port == 2222 && t.user == "nix" && t.alias == "builder1")
        #expect(t.connectTimeout == .seconds(7))
    }

    @Test func negatedPatternsExclude() throws {
        let config = try SSHConfig.parse("""
        Host *.lab !bad.lab
          User lab
        Host=other
          User = other
        """)
        #expect(config.resolve(host: "good.lab", localUser: "me", home: home).user == "lab")
        #expect(config.resolve(host: "bad.lab", localUser: "me", home: home).user == "me")
        #expect(config.resolve(host: "other", localUser: "me", home: home).user == "other")
        #expect(config.resolve(host: "x", localUser: "me", home: home).hostName == "x")
        #expect(SSHConfig.matches(host: "b1", patterns: ["b?"]))
        #expect(!SSHConfig.matches(host: "b12", patterns: ["b?"]))
        #expect(!SSHConfig.matches(host: "b1", patterns: ["!b1"]))
    }

    @Test func defaultsWhenNothingMatches() throws {
        let o = try SSHConfig.parse("Host foo\n  Port 1\n").resolve(host: "bar", localUser: "me", home: home)
        #expect(o.port == 22 && o.user == "me" && o.hostKeyAlias == nil && !o.identitiesOnly)
        #expect(o.identityFiles == ["/home/alice/.ssh/id_ed25519", "/home/alice/.ssh/id_ecdsa", "/home/alice/.ssh/id_rsa"])
        #expect(!o.identityFilesConfigured)
        #expect(o.strictHostKeyChecking == .yes)
    }

    @Test func includeInsideHostBlockIsConditional() throws {
        let files = ["/home/alice/.ssh/conf.d/a.conf": "Port 2200\nHost zzz\n  User z\n"]
        let config = try SSHConfig.parse("""
        Host b1
          Include conf.d/*.conf
          User one
        Host *
          Port 2201
        """, file: "/home/alice/.ssh/config") { pattern, _, _ in
            let full = "/home/alice/.ssh/" + pattern
            return files.filter { SSHConfig.matches(host: $0.key, patterns: [full]) }.map { ($0.key, $0.value) }
        }
        let b1 = config.resolve(host: "b1", localUser: "me", home: home)
        #expect(b1.port == 2200)
        #expect(b1.user == "one")  // "Host zzz" inside the include does not apply to b1
        #expect(config.resolve(host: "other", localUser: "me", home: home).port == 2201)
        #expect(config.resolve(host: "zzz", localUser: "me", home: home).user == "me")
    }

    @Test func loaderReadsIncludesFromDisk() throws {
        let dir = try TestSupport.temporaryDirectory("nb-sshcfg")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ssh = dir.path + "/.ssh"
        try FileManager.default.createDirectory(atPath: ssh + "/conf.d", withIntermediateDirectories: true)
        try "Include conf.d/*\nHost *\n  Port 1\n".write(toFile: ssh + "/config", atomically: true, encoding: .utf8)
        try "Host b2\n  Port 2\n".write(toFile: ssh + "/conf.d/20-b2", atomically: true, encoding: .utf8)
        try "Host b1\n  Port 3\n  IdentitiesOnly yes\n".write(toFile: ssh + "/conf.d/10-b1", atomically: true, encoding: .utf8)
        let config = try SSHConfig.load(home: dir.path)
        #expect(config.resolve(host: "b1", home: dir.path).port == 3)
        #expect(config.resolve(host: "b1", home: dir.path).identitiesOnly)
        #expect(config.resolve(host: "b2", home: dir.path).port == 2)
        #expect(config.resolve(host: "b3", home: dir.path).port == 1)
        #expect(try SSHConfig.load(home: dir.path + "/missing", system: nil) == SSHConfig())
    }

    @Test func errorsNameFileAndLine() {
        #expect(throws: SSHConfigError(file: "c", line: 3, message: "bad port 'http'")) {
            try SSHConfig.parse("Host a\n  User b\n  Port http\n", file: "c")
        }
        #expect(throws: SSHConfigError(file: "c", line: 1, message: "unterminated quote")) {
            try SSHConfig.parse("IdentityFile \"x\n", file: "c")
        }
        #expect(throws: SSHConfigError(file: "c", line: 2, message: "bad StrictHostKeyChecking 'maybe'")) {
            try SSHConfig.parse("Host a\nStrictHostKeyChecking maybe\n", file: "c")
        }
        #expect(SSHConfigError(file: "c", line: 2, message: "m").description == "c:2: m")
    }

    @Test func matchBlocksApplyAndSettingsRememberTheirLine() throws {
        var ran: [String] = []
        let config = try SSHConfig.parse("""
        Host b1
          HostName 10.1.1.1
        Match host 10.1.* exec "probe %h %n %r"
          Port 9
        Match localnetwork 10.0.0.0/8
          User never
        Host *
          Port 8
          ControlMaster auto
        """, file: "c")
        let o = config.resolve(host: "b1", localUser: "me", home: home, runExec: { ran.append($0); return true })
        #expect(o.port == 9)
        #expect(ran == ["probe 10.1.1.1 b1 me"])
        #expect(o.user == "me")
        #expect(o.settings.first { $0.keyword == "port" }?.origin == "c:4")
        #expect(o.settings.first { $0.keyword == "controlmaster" }?.origin == "c:9")
        #expect(config.warnings == ["c:5: Match localnetwork is not supported; the block never applies"])
        // A failed exec makes the block not apply; an earlier failed criterion skips exec.
        ran = []
        #expect(config.resolve(host: "b1", localUser: "me", home: home, runExec: { ran.append($0); return false }).port == 8)
        #expect(config.resolve(host: "b2", localUser: "me", home: home, runExec: { ran.append($0); return true }).port == 8)
        #expect(ran == ["probe 10.1.1.1 b1 me"])
    }

    @Test func matchExecRunsInTheShell() {
        #expect(SSHConfig.runMatchExec("test 1 = 1 && exit 0"))
        #expect(!SSHConfig.runMatchExec("exit 1"))
        #expect(!SSHConfig.runMatchExec("sleep 5", timeout: 0))
    }

    @Test func proxyJumpResolvesEachHop() throws {
        let config = try SSHConfig.parse("""
        Host inner
          ProxyJump alice@j1:2201,j2
        Host j2
          HostName 127.0.0.2
          ProxyJump elsewhere
        Host j1
          ProxyCommand ssh -W %h:%p gateway-%r %n %%
        """, file: "c")
        let o = config.resolve(host: "inner", localUser: "me", home: home)
        #expect(o.proxyJump == [SSHJumpSpec("alice@j1:2201")!, SSHJumpSpec("j2")!])
        let j2 = try #require(o.jumpHost.first)
        #expect(j2.hostName == "127.0.0.2")
        #expect(j2.proxyJump == [SSHJumpSpec("alice@j1:2201")!])  // the earlier hops, not j2's own ProxyJump
        let j1 = try #require(j2.jumpHost.first)
        #expect(j1.user == "alice" && j1.port == 2201)
        #expect(j1.proxyCommand == "ssh -W j1:2201 gateway-alice j1 %")
        guard case let .jump(t2)? = o.target().proxy, case let .jump(t1)? = t2.proxy, case .command? = t1.proxy else {
            Issue.record("expected inner <- j2 <- j1 <- command")
            return
        }
        #expect(config.resolve(host: "j3", localUser: "me", home: home).proxyJump == nil)
        #expect(SSHJumpSpec("[::1]:22")?.host == "::1")
        #expect(SSHJumpSpec("a:b") == nil)
    }

    @Test(.tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
    func fleetConfigDrivesSSHChannelStream() async throws {
        try await withFleet(2) { fleet in
            let config = try SSHConfig.load(path: fleet.sshConfig)
            let o = config.resolve(host: "builder2")
            #expect(o.port == fleet.builders[1].port && o.hostKeyAlias == "builder2" && o.batchMode)
            let s = try await SSHChannelStream.connect(to: o.target(), command: "echo via-config")
            #expect(try await s.readToEnd() == Array("via-config\n".utf8))
            await s.close()
            // The machines-file key of builder 1 pinned for builder 2 is refused.
            let err = await expectSSHError {
                _ = try await SSHChannelStream.connect(host: "builder2", config: config,
                                                       pinnedHostKey: fleet.builders[0].hostKeyBase64, command: "true")
            }
            guard case .hostKeyMismatch? = err?.reason else {
                Issue.record("expected host key mismatch, got \(String(describing: err))")
                return
            }
            let ok = try await SSHChannelStream.connect(host: "builder2", config: config,
                                                        pinnedHostKey: fleet.builders[1].hostKeyBase64, command: "nix-daemon --stdio")
            #expect(try await workerHandshake(ok).0 == 0x122)
            await ok.close()
        }
    }
}
