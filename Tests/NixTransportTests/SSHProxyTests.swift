import Foundation
import NixTransport
import Testing
import TestSupport

/// Builders behind a jump host: two real sshds on loopback, builder 1 the jump host and
/// builder 2 the inner builder, reached by ProxyJump (our own direct-tcpip channel through
/// the jump host's session) and by ProxyCommand (OpenSSH's `ssh -W`).
@Suite("SSH ProxyJump and ProxyCommand", .serialized, .timeLimit(.minutes(3)))
struct SSHProxyTests {
    /// A config with `jump` (builder 1), `inner` via ProxyJump, `twohops` via jump twice,
    /// `viacmd` via ProxyCommand, and `badjump`, whose jump host has another host's key.
    static func proxyConfig(_ fleet: Fleet) throws -> SSHConfig {
        func block(_ name: String, _ n: Int, alias: String) -> String {
            """
            Host \(name)
              HostName 127.0.0.1
              Port \(fleet.builders[n - 1].port)
              HostKeyAlias \(alias)

            """
        }
        let text = block("jump", 1, alias: "builder1") + block("jumpwrongkey", 1, alias: "builder2")
            + block("inner", 2, alias: "builder2") + "  ProxyJump jump\n"
            + block("twohops", 2, alias: "builder2") + "  ProxyJump jump,root@jump\n"
            + block("badjump", 2, alias: "builder2") + "  ProxyJump jumpwrongkey\n"
            + block("innerwrongkey", 2, alias: "builder1") + "  ProxyJump jump\n"
            + block("viacmd", 2, alias: "builder2") + "  ProxyCommand ssh -F \(fleet.sshConfig) -W %h:%p builder1\n"
            + block("badcmd", 2, alias: "builder2") + "  ProxyCommand exec false\n"
            + """
            Host *
              User root
              IdentityFile \(fleet.clientKey)
              IdentitiesOnly yes
              UserKnownHostsFile \(fleet.knownHosts)
              StrictHostKeyChecking yes
              ConnectTimeout 10
              ServerAliveInterval 1

            """
        let file = fleet.directory.appendingPathComponent("proxy_config").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return try SSHConfig.load(path: file)
    }

    @Test(.tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
    func nixDaemonBehindJumpAndProxyCommandAnswers() async throws {
        try await withFleet(2) { fleet in
            let config = try Self.proxyConfig(fleet)
            for host in ["inner", "twohops", "viacmd"] {
                let s = try await SSHChannelStream.connect(host: host, config: config, command: "nix-daemon --stdio")
                let (version, nixVersion) = try await workerHandshake(s)
                #expect(version == 0x122, "\(host)")
                #expect(nixVersion == (try installedNixVersion()), "\(host)")
                await s.close()
            }
        }
    }

    @Test(.tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
    func bulkDataAndParallelSessionsThroughTheJump() async throws {
        try await withFleet(2) { fleet in
            let config = try Self.proxyConfig(fleet)
            let size = 24 << 20
            try await withThrowingTaskGroup(of: Int.self) { group in
                for host in ["inner", "twohops", "inner", "viacmd"] {
                    group.addTask {
                        let s = try await SSHChannelStream.connect(host: host, config: config, command: "head -c \(size) /dev/zero")
                        let n = try await s.readToEnd(limit: size + 1).count
                        await s.close()
                        return n
                    }
                }
                for try await n in group { #expect(n == size) }
            }
            // Upload: what we write arrives whole.
            let s = try await SSHChannelStream.connect(host: "twohops", config: config, command: "wc -c")
            try await s.write([UInt8](repeating: 7, count: 5 << 20))
            await s.closeWrite()
            #expect(String(decoding: try await s.readToEnd(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "\(5 << 20)")
            await s.close()
        }
    }

    @Test(.tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
    func errorsNameTheHopThatFailed() async throws {
        try await withFleet(2) { fleet in
            let config = try Self.proxyConfig(fleet)
            // The jump host's own key is checked: builder 1 presents its key where builder 2's is expected.
            let jumpErr = await expectSSHError {
                _ = try await SSHChannelStream.connect(host: "badjump", config: config, command: "true")
            }
            guard case let .proxy(hop, message)? = jumpErr?.reason else {
                Issue.record("expected a proxy error, got \(String(describing: jumpErr))")
                return
            }
            #expect(hop.contains("jumpwrongkey"))
            #expect(message.contains("host key mismatch"))
            #expect(jumpErr!.description.contains("badjump"))
            // The inner host's key is checked too, and that error is the inner host's own.
            let innerErr = await expectSSHError {
                _ = try await SSHChannelStream.connect(host: "innerwrongkey", config: config, command: "true")
            }
            guard case .hostKeyMismatch? = innerErr?.reason else {
                Issue.record("expected an inner host key mismatch, got \(String(describing: innerErr))")
                return
            }
            #expect(innerErr!.peer.contains("innerwrongkey"))
            // A ProxyCommand that exits at once.
            let cmdErr = await expectSSHError {
                _ = try await SSHChannelStream.connect(host: "badcmd", config: config, command: "true")
            }
            guard case let .proxy(cmdHop, _)? = cmdErr?.reason else {
                Issue.record("expected a proxy error, got \(String(describing: cmdErr))")
                return
            }
            #expect(cmdHop == "ProxyCommand 'exec false'")
        }
    }
}
