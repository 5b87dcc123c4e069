import Foundation
import NixCore
import NixTransport
import Testing
import TestSupport

@Suite("SSHChannelStream pipelining and keys", .timeLimit(.minutes(1)), .tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
struct SSHPipelineTests {
    @Test func concurrentWritersNeverInterleaveWithinAWrite() async throws {
        try await withFleet { fleet in
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet), command: "cat")
            let writers = 8, perWriter = 100, size = 1024
            // A reader runs while the writers are still sending: reads do not wait for writes.
            let reader = Task { try await s.read(exactly: writers * perWriter * size) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<writers {
                    group.addTask {
                        for i in 0..<perWriter {
                            var chunk = [UInt8](repeating: UInt8(w), count: size)
                            chunk[0] = UInt8(i)
                            try await s.write(chunk)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let out = try await reader.value
            var next = [Int](repeating: 0, count: writers)
            for start in stride(from: 0, to: out.count, by: size) {
                let chunk = out[start..<start + size]
                let w = Int(chunk[start + 1])
                #expect(chunk.dropFirst().allSatisfy { $0 == UInt8(w) }, "chunk at \(start) mixes writers")
                // Each writer's chunks arrive in its own order.
                #expect(Int(chunk[start]) == next[w])
                next[w] += 1
            }
            #expect(next == [Int](repeating: perWriter, count: writers))
            await s.close()
        }
    }

    @Test func requestResponseRoundTripsOnOneStream() async throws {
        try await withFleet { fleet in
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet), command: "cat")
            for i in 0..<200 {
                let msg = Array("message \(i)\n".utf8)
                try await s.write(msg)
                #expect(try await s.read(exactly: msg.count) == msg)
            }
            await s.close()
        }
    }

    @Test func hashedKnownHostsEntriesMatch() async throws {
        try await withFleet { fleet in
            let hashed = fleet.directory.path + "/hashed_known_hosts"
            try FileManager.default.copyItem(atPath: fleet.knownHosts, toPath: hashed)
            try TestSupport.run(["ssh-keygen", "-H", "-f", hashed])
            #expect(try String(contentsOfFile: hashed, encoding: .utf8).hasPrefix("|1|"))
            var t = fleetTarget(fleet)
            t.knownHostsFiles = [hashed]
            let s = try await SSHChannelStream.connect(to: t, command: "true")
            await s.close()
        }
    }

    @Test func publicKeyParsing() throws {
        try withFleet1 { fleet in
            let line = fleet.builders[0].hostKeyLine
            let key = try SSHPublicKey(openSSHLine: line)
            #expect(key.type == "ssh-ed25519")
            #expect(try SSHPublicKey(machinesFileField: fleet.builders[0].hostKeyBase64) == key)
            let keygen = try TestSupport.run(["ssh-keygen", "-lf", fleet.directory.path + "/builder1/host_ed25519.pub"])
            #expect(keygen.text.contains(key.fingerprint))
        }
        #expect(throws: SSHKeyParseError.notAKeyLine("ssh-ed25519")) { try SSHPublicKey(openSSHLine: "ssh-ed25519") }
        #expect(throws: SSHKeyParseError.badBase64("!!!")) { try SSHPublicKey(openSSHLine: "ssh-ed25519 !!!") }
        // A blob whose embedded type differs from the text.
        let blob = Base64.encode([0, 0, 0, 7] + Array("ssh-rsa".utf8) + [0, 0, 0, 1, 1])
        #expect(throws: SSHKeyParseError.typeMismatch("ssh-ed25519")) { try SSHPublicKey(openSSHLine: "ssh-ed25519 \(blob)") }
    }

    func withFleet1(_ body: (Fleet) throws -> Void) throws {
        let fleet = try Fleet(count: 1)
        defer { fleet.stop() }
        try body(fleet)
    }
}
