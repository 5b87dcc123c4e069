import Foundation
import NixTransport
import Testing
import TestSupport

/// RSA user keys against OpenSSH >= 8.8, which refuses SHA-1 (ssh-rsa) signatures: they log
/// in with rsa-sha2-256/512 when the loaded libssh2 signs so (1.11), else fail with the fix.
@Suite("RSA user keys", .timeLimit(.minutes(2)), .tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
struct SSHRSATests {
    /// An RSA key accepted by builder 1.
    static func rsaKey(_ fleet: Fleet) throws -> String {
        let key = fleet.directory.appendingPathComponent("client_rsa").path
        try TestSupport.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "rsa-client", "-f", key])
        let authorized = fleet.directory.appendingPathComponent("builder1/authorized_keys").path
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: authorized))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(pub.utf8))
        try handle.close()
        return key
    }

    @Test func rsaKeyLogsInOrSaysWhy() async throws {
        try await withFleet(1) { fleet in
            let key = try Self.rsaKey(fleet)
            // OpenSSH's own client logs in with the key: the server accepts it.
            #expect(try TestSupport.run(["ssh", "-F", fleet.sshConfig, "-i", key, "-o", "IdentitiesOnly=yes",
                                         fleet.builders[0].name, "true"], check: false).status == 0)
            let target = fleetTarget(fleet, 1, key: key)
            if SSHLibrary.signsRSAWithSHA2 {
                let s = try await SSHChannelStream.connect(to: target, command: "echo rsa")
                #expect(try await s.readToEnd() == Array("rsa\n".utf8))
                await s.close()
            } else {
                let err = await expectSSHError { _ = try await SSHChannelStream.connect(to: target, command: "true") }
                guard case let .authenticationFailed(_, tried, note)? = err?.reason else {
                    Issue.record("expected an authentication failure, got \(String(describing: err))")
                    return
                }
                #expect(tried == ["\(key) (RSA)"])
                #expect(note == "libssh2 \(SSHLibrary.version) can sign RSA keys only with SHA-1, which OpenSSH >= 8.8 refuses; use an ed25519 key or libssh2 >= 1.11")
            }
        }
    }
}
