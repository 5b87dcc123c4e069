import Foundation
import NixCore
import NixTransport
import Testing
import TestSupport

@Suite("SSHChannelStream failures", .timeLimit(.minutes(1)), .tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
struct SSHFailureTests {
    @Test func closedPortGivesConnectionRefused() async throws {
        let port = try Fleet.freeLoopbackPort()
        // A long connect timeout: the refusal must be reported as such, not after a wait.
        let t = SSHTarget(host: "127.0.0.1", port: port, user: "root", connectTimeout: .seconds(120))
        let start = ContinuousClock.now
        let err = await expectSSHError { _ = try await SSHChannelStream.connect(to: t, command: "true") }
        #expect(err?.reason == .connectionRefused)
        #expect(err?.description == "ssh 127.0.0.1:\(port): connection refused")
        #expect(ContinuousClock.now - start < .seconds(60))
    }

    @Test func silentPeerTimesOutDuringHandshake() async throws {
        // A listener that accepts (the kernel completes the TCP handshake) but never speaks.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        #expect(listen(fd, 4) == 0)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let t = SSHTarget(host: "127.0.0.1", port: port, user: "root", connectTimeout: .milliseconds(500))
        let err = await expectSSHError { _ = try await SSHChannelStream.connect(to: t, command: "true") }
        #expect(err?.reason == .connectTimeout(seconds: 0.5, phase: "SSH handshake"))
    }

    @Test func killedSSHServerGivesTypedErrorNotHang() async throws {
        try await withFleet { fleet in
            // $PPID of the command's shell is the sshd process serving this session.
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet), command: "echo $PPID; exec cat")
            var line: [UInt8] = []
            while line.last != UInt8(ascii: "\n") { line += try await s.read(maxLength: 1) }
            let pid = try #require(Int32(String(decoding: line.dropLast(), as: UTF8.self)))
            try await s.write(Array("ping".utf8))
            #expect(try await s.read(exactly: 4) == Array("ping".utf8))
            #expect(kill(pid, SIGKILL) == 0)
            let err = await expectSSHError {
                while true {
                    if try await s.read(maxLength: 4096).isEmpty { return }
                }
            }
            guard case .peerClosed? = err?.reason else {
                Issue.record("expected peerClosed, got \(String(describing: err))")
                return
            }
            let writeErr = await expectSSHError { try await s.write([1, 2, 3]) }
            #expect(writeErr != nil)
            await s.close()
        }
    }

    @Test func killedRemoteCommandEndsStreamWithSignal() async throws {
        try await withFleet { fleet in
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet), command: "echo $$; exec cat")
            var line: [UInt8] = []
            while line.last != UInt8(ascii: "\n") { line += try await s.read(maxLength: 1) }
            let pid = try #require(Int32(String(decoding: line.dropLast(), as: UTF8.self)))
            #expect(kill(pid, SIGKILL) == 0)
            #expect(try await s.read(maxLength: 10).isEmpty)
            #expect(await s.waitForExit()?.signal == "KILL")
        }
    }

    @Test func ioTimeoutOnSilentCommand() async throws {
        try await withFleet { fleet in
            // cat stays silent until we write (and exits at close): the read can only time out.
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet, ioTimeout: .milliseconds(300)), command: "cat")
            let err = await expectSSHError { _ = try await s.read(maxLength: 10) }
            #expect(err?.reason == .ioTimeout(seconds: 0.3))
            await s.close()
        }
    }

    @Test func closeFailsPendingReadAndLaterCalls() async throws {
        try await withFleet { fleet in
            let s = try await SSHChannelStream.connect(to: fleetTarget(fleet), command: "cat")
            let reader = Task { try await s.read(maxLength: 10) }
            try await Task.sleep(for: .milliseconds(100))
            await s.close()
            await #expect(throws: SSHError.self) { try await reader.value }
            await #expect(throws: SSHError.self) { try await s.write([1]) }
        }
    }
}
