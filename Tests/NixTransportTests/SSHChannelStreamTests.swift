import Foundation
import NixCore
import NixTransport
import Testing
import TestSupport

@Suite("SSHChannelStream against real sshd", .timeLimit(.minutes(1)), .tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
struct SSHChannelStreamTests {
    @Test func echoRoundTripAndExitStatus() async throws {
        try await withFleet { fleet in
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet), command: "echo hello; echo oops >&2; exit 3")
            let out = try await s.readToEnd()
            #expect(String(decoding: out, as: UTF8.self) == "hello\n")
            let status = await s.waitForExit()
            #expect(status == SSHExitStatus(code: 3, signal: nil))
            #expect(s.stderrText == "oops\n")
            // AES-GCM where the loaded libssh2 has it (1.11), else AES-CTR with HMAC-SHA2.
            if SSHLibrary.version.hasPrefix("1.10") {
                #expect(s.algorithms.cipher == "aes128-ctr")
                #expect(s.algorithms.mac == "hmac-sha2-256")
            } else {
                #expect(s.algorithms.cipher == "aes128-gcm@openssh.com")
            }
        }
    }

    @Test func catFiftyMiBBothWaysCheckedByHash() async throws {
        try await withFleet { fleet in
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet), command: "cat")
            let size = 50 << 20
            let data = try #require(FileHandle(forReadingAtPath: "/dev/urandom")?.readData(ofLength: size))
            let sent = [UInt8](data)
            let writer = Task {
                var i = 0
                while i < sent.count {
                    let n = min(1 << 20, sent.count - i)
                    try await s.write(Array(sent[i..<i + n]))
                    i += n
                }
                await s.closeWrite()
            }
            let hasher = HashSink(.sha256)
            var total = 0
            while true {
                let chunk = try await s.read(maxLength: 1 << 20)
                if chunk.isEmpty { break }
                total += chunk.count
                hasher.update(chunk)
            }
            try await writer.value
            #expect(total == size)
            #expect(hasher.finalize() == HashSink.hash(.sha256, sent))
            #expect(await s.waitForExit()?.code == 0)
        }
    }

    @Test func nixDaemonWorkerHandshake() async throws {
        try await withFleet { fleet in
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet), command: "nix-daemon --stdio")
            let (version, nixVersion) = try await workerHandshake(s)
            #expect(version == 0x122)
            #expect(nixVersion == (try installedNixVersion()))
            await s.close()
            // The builder's NIX_CONF_DIR sent the daemon to the builder's own chroot store.
            #expect(FileManager.default.fileExists(atPath: fleet.builders[0].storeRoot + "/nix/var/nix/db"))
        }
    }

    @Test func pinnedHostKeyFromMachinesFileWorks() async throws {
        try await withFleet(2) { fleet in
            var t = fleetTarget(fleet, 2, pinned: fleet.builders[1].hostKeyBase64)
            t.knownHostsFiles = ["/nonexistent"]
            let s = try await SSHChannelStream.connect(to: t, command: "echo ok")
            #expect(try await s.readToEnd() == Array("ok\n".utf8))
            await s.close()
        }
    }

    @Test func wrongPinnedHostKeyIsRefusedBeforeLogin() async throws {
        try await withFleet(2) { fleet in
            // Builder 2's key pinned for builder 1.
            let t = fleetTarget(fleet, 1, pinned: fleet.builders[1].hostKeyBase64)
            let err = await expectSSHError { _ = try await SSHChannelStream.connect(to: t, command: "touch /tmp/never") }
            let expected = try SSHPublicKey(machinesFileField: fleet.builders[1].hostKeyBase64).fingerprint
            let got = try SSHPublicKey(openSSHLine: fleet.builders[0].hostKeyLine).fingerprint
            #expect(err?.reason == .hostKeyMismatch(expected: expected, got: got, source: "pinned in machines file"))
            #expect(err?.description.contains("builder1 (127.0.0.1:\(fleet.builders[0].port))") == true)
            // OpenSSH computes the same fingerprint.
            let keygen = try TestSupport.run(["ssh-keygen", "-lf", fleet.directory.path + "/builder1/host_ed25519.pub"])
            #expect(keygen.text.contains(got))
            // No key was even offered: sshd logged no accepted login.
            let log = try String(contentsOfFile: fleet.directory.path + "/builder1/sshd.log", encoding: .utf8)
            #expect(!log.contains("Accepted publickey"))
        }
    }

    @Test func knownHostsMismatchIsRefused() async throws {
        try await withFleet(2) { fleet in
            var t = fleetTarget(fleet, 1)
            t.hostKeyAlias = "builder2"  // builder2's entry does not hold builder1's key
            let err = await expectSSHError { _ = try await SSHChannelStream.connect(to: t, command: "true") }
            guard case .hostKeyMismatch = err?.reason else {
                Issue.record("expected a host key mismatch, got \(String(describing: err))")
                return
            }
        }
    }

    @Test func knownHostsKeyTypeIsNegotiated() async throws {
        let fleet = try Fleet(count: 1, extraHostKeyTypes: ["ecdsa"])
        defer { fleet.stop() }
        // Only the ECDSA key is known; ed25519 (our first choice otherwise) would look unknown.
        let known = fleet.directory.path + "/ecdsa_known_hosts"
        try "builder1 \(fleet.builders[0].extraHostKeyLines[0])\n".write(toFile: known, atomically: true, encoding: .utf8)
        var t = fleetTarget(fleet)
        t.knownHostsFiles = [known]
        let s = try await SSHChannelStream.connect(to: t, command: "echo ecdsa-host")
        #expect(try await s.readToEnd() == Array("ecdsa-host\n".utf8))
        await s.close()
        // And a pinned ECDSA key works the same way.
        let pinned = Data(fleet.builders[0].extraHostKeyLines[0].utf8).base64EncodedString()
        let p = try await SSHChannelStream.connect(to: fleetTarget(fleet, pinned: pinned), command: "true")
        await p.close()
    }

    @Test func unknownHostRefusedWithStrictChecking() async throws {
        try await withFleet { fleet in
            let empty = fleet.directory.path + "/empty_known_hosts"
            _ = FileManager.default.createFile(atPath: empty, contents: Data())
            var t = fleetTarget(fleet)
            t.knownHostsFiles = [empty]
            let err = await expectSSHError { _ = try await SSHChannelStream.connect(to: t, command: "true") }
            let fp = try SSHPublicKey(openSSHLine: fleet.builders[0].hostKeyLine).fingerprint
            #expect(err?.reason == .unknownHost(name: "builder1", fingerprint: fp, knownHostsFiles: [empty]))

            // "no" lets the unknown host in without recording it.
            t.strictHostKeyChecking = .no
            let lax = try await SSHChannelStream.connect(to: t, command: "true")
            await lax.close()
            #expect(try String(contentsOfFile: empty, encoding: .utf8).isEmpty)

            // accept-new records the key; then strict checking accepts the host.
            t.strictHostKeyChecking = .acceptNew
            let s = try await SSHChannelStream.connect(to: t, command: "true")
            await s.close()
            let recorded = try String(contentsOfFile: empty, encoding: .utf8)
            #expect(recorded.hasPrefix("builder1 ssh-ed25519 "))
            t.strictHostKeyChecking = .yes
            let again = try await SSHChannelStream.connect(to: t, command: "true")
            await again.close()
        }
    }

    @Test func wrongUserKeyRefusedNamingTheKey() async throws {
        try await withFleet { fleet in
            let t = fleetTarget(fleet, key: fleet.strangerKey)
            let err = await expectSSHError { _ = try await SSHChannelStream.connect(to: t, command: "true") }
            #expect(err?.reason == .authenticationFailed(user: "root", tried: [fleet.strangerKey], note: nil))
            #expect(err?.description.contains("authentication as 'root' refused") == true)
        }
    }

    @Test func ecdsaKeyWorks() async throws {
        try await withFleet { fleet in
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet, key: fleet.clientECDSAKey), command: "echo ecdsa")
            #expect(try await s.readToEnd() == Array("ecdsa\n".utf8))
            await s.close()
        }
    }

    @Test(.tags(.hostTools), .enabled(if: TestSupport.has("ssh-agent"), "needs ssh-agent"))
    func sshAgentAuthentication() async throws {
        try await withFleet { fleet in
            let sock = fleet.directory.path + "/agent.sock"
            let agent = try SpawnedProcess([try #require(TestSupport.which("ssh-agent")), "-D", "-a", sock])
            defer { agent.stop() }
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: sock) { usleep(20_000) }
            try TestSupport.run(["ssh-add", fleet.clientKey], environment: ["SSH_AUTH_SOCK": sock])
            var t = fleetTarget(fleet)
            t.identityFiles = []
            t.identitiesOnly = false
            t.agentSocket = sock
            let s = try await SSHChannelStream.connect(to: t, command: "echo agent")
            #expect(try await s.readToEnd() == Array("agent\n".utf8))
            await s.close()
        }
    }
}
