import Foundation
import NixTransport
import Testing
import TestSupport

/// known_hosts as OpenSSH reads and writes it, against real sshds.
@Suite("known_hosts", .serialized, .timeLimit(.minutes(3)),
       .tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
struct SSHKnownHostsTests {
    /// Builder n with known_hosts `text` (written to a fresh file) and `strict`.
    static func target(_ fleet: Fleet, _ n: Int, knownHosts text: String?, strict: StrictHostKeyChecking = .yes,
                       file: String? = nil) throws -> SSHTarget {
        var t = fleetTarget(fleet, n)
        let path = file ?? fleet.directory.appendingPathComponent("kh-\(UUID().uuidString)").path
        if let text { try text.write(toFile: path, atomically: true, encoding: .utf8) }
        t.knownHostsFiles = [path]
        t.strictHostKeyChecking = strict
        return t
    }

    static func connects(_ t: SSHTarget) async throws -> Bool {
        let s = try await SSHChannelStream.connect(to: t, command: "echo ok")
        defer { Task { await s.close() } }
        return try await s.readToEnd() == Array("ok\n".utf8)
    }

    static func refusal(_ t: SSHTarget) async -> SSHError? {
        await expectSSHError { _ = try await SSHChannelStream.connect(to: t, command: "true") }
    }

    @Test func everyValidLineIsReadAndBadLinesAreNamed() async throws {
        try await withFleet(2) { fleet in
            let b1 = fleet.builders[0]
            // libssh2's own reader stops at the first of these lines.
            let text = "garbage\n@bogus x ssh-ed25519 AAAA\nbuilder9 ssh-ed25519 !!notbase64\n\(b1.name) \(b1.hostKeyLine)\n"
            #expect(try await Self.connects(Self.target(fleet, 1, knownHosts: text)))
            let err = await Self.refusal(try Self.target(fleet, 2, knownHosts: text))
            guard case .unknownHost? = err?.reason else { Issue.record("expected unknown host, got \(String(describing: err))"); return }
            #expect(err!.description.contains(":1: not a known_hosts line"))
            #expect(err!.description.contains(":2: unknown marker '@bogus'"))
            #expect(err!.description.contains(":3: invalid base64"))
        }
    }

    @Test func hashedNamesAndPortsAreFound() async throws {
        try await withFleet(1) { fleet in
            let b = fleet.builders[0]
            let file = fleet.directory.appendingPathComponent("kh-hashed").path
            let key = b.hostKeyLine.split(separator: " ").prefix(2).joined(separator: " ")
            try "other.example \(key)\n\(b.name) \(key)\n[127.0.0.1]:\(b.port) \(key)\n"
                .write(toFile: file, atomically: true, encoding: .utf8)
            try TestSupport.run(["ssh-keygen", "-q", "-H", "-f", file])
            #expect(!(try String(contentsOfFile: file, encoding: .utf8)).contains(b.name))
            #expect(try await Self.connects(Self.target(fleet, 1, knownHosts: nil, file: file)))
            // Without HostKeyAlias the name is "[127.0.0.1]:port".
            var t = try Self.target(fleet, 1, knownHosts: nil, file: file)
            t.hostKeyAlias = nil
            #expect(try await Self.connects(t))
        }
    }

    @Test func revokedOtherTypeAndCertAuthorityAreRefused() async throws {
        try await withFleet(1) { fleet in
            let b = fleet.builders[0]
            let revoked = await Self.refusal(try Self.target(fleet, 1, knownHosts: "@revoked * \(b.hostKeyLine)\n\(b.name) \(b.hostKeyLine)\n"))
            guard case let .hostKeyRefused(_, why)? = revoked?.reason else { Issue.record("got \(String(describing: revoked))"); return }
            #expect(why.contains("@revoked"))

            // Known with an ECDSA key only; the server has only ed25519: refused even under accept-new.
            let ecdsa = try String(contentsOfFile: fleet.clientECDSAKey + ".pub", encoding: .utf8)
                .split(separator: " ").prefix(2).joined(separator: " ")
            let file = fleet.directory.appendingPathComponent("kh-type").path
            let otherType = await Self.refusal(try Self.target(fleet, 1, knownHosts: "\(b.name) \(ecdsa)\n", strict: .acceptNew, file: file))
            guard case let .hostKeyRefused(_, typeWhy)? = otherType?.reason else { Issue.record("got \(String(describing: otherType))"); return }
            #expect(typeWhy.contains("ssh-ed25519") && typeWhy.contains("ecdsa-sha2-nistp256") && typeWhy.contains(":1"))
            #expect(try String(contentsOfFile: file, encoding: .utf8) == "\(b.name) \(ecdsa)\n")

            let ca = await Self.refusal(try Self.target(fleet, 1, knownHosts: "@cert-authority * \(ecdsa)\n", strict: .acceptNew))
            guard case let .hostKeyRefused(_, caWhy)? = ca?.reason else { Issue.record("got \(String(describing: ca))"); return }
            #expect(caWhy.contains("@cert-authority"))

            // A changed key of the same type is a mismatch naming the line.
            let other = try String(contentsOfFile: fleet.strangerKey + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
            let changed = await Self.refusal(try Self.target(fleet, 1, knownHosts: "# old\n\(b.name) \(other)\n", strict: .acceptNew))
            guard case let .hostKeyMismatch(_, _, source)? = changed?.reason else { Issue.record("got \(String(describing: changed))"); return }
            #expect(source.hasSuffix(":2"))
        }
    }

    @Test func concurrentAcceptNewRecordsOneCleanLinePerHost() async throws {
        try await withFleet(4) { fleet in
            let file = fleet.directory.appendingPathComponent("kh-new").path
            let perHost = 6
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for round in 0..<perHost {
                    for n in 1...4 {
                        group.addTask {
                            var t = try Self.target(fleet, n, knownHosts: nil, strict: .acceptNew, file: file)
                            t.hashKnownHosts = round % 2 == 1 && n == 4
                            return try await Self.connects(t)
                        }
                    }
                }
                for try await ok in group { #expect(ok) }
            }
            let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.last == "")
            let entries = lines.dropLast()
            #expect(entries.count == 4, "\(entries)")
            for b in fleet.builders.prefix(3) { #expect(entries.contains { $0 == "\(b.name) \(b.hostKeyLine.split(separator: " ").prefix(2).joined(separator: " "))" }) }
            // OpenSSH finds every recorded host, and we connect strictly now.
            for b in fleet.builders {
                #expect(try TestSupport.run(["ssh-keygen", "-F", b.name, "-f", file], check: false).status == 0)
            }
            for n in 1...4 { #expect(try await Self.connects(Self.target(fleet, n, knownHosts: nil, file: file))) }
        }
    }
}
