import Foundation
import NixCore
import NixTransport
import Testing
import TestSupport

@Suite("ProcessStream and UnixSocketStream", .timeLimit(.minutes(1)))
struct LocalStreamTests {
    @Test(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
    func nixDaemonStdioOnAChrootStore() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-proc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let root = dir.path + "/root"
        let daemon = try ProcessStream(["nix-daemon", "--stdio", "--store", "local?root=\(root)"])
        let (version, nixVersion) = try await workerHandshake(daemon)
        #expect(version == 0x122)
        #expect(nixVersion == (try installedNixVersion()))
        #expect(FileManager.default.fileExists(atPath: root + "/nix/var/nix/db"))
        // EOF on stdin ends the daemon normally.
        #expect(await daemon.waitForExit() == 0)
    }

    @Test func catRoundTripOfTenMiB() async throws {
        let p = try ProcessStream(["cat"])
        let data = [UInt8](try #require(FileHandle(forReadingAtPath: "/dev/urandom")?.readData(ofLength: 10 << 20)))
        let writer = Task {
            for start in stride(from: 0, to: data.count, by: 1 << 20) {
                try await p.write(Array(data[start..<min(start + (1 << 20), data.count)]))
            }
            await p.closeWrite()
        }
        let back = try await p.readToEnd()
        try await writer.value
        #expect(HashSink.hash(.sha256, back) == HashSink.hash(.sha256, data))
        #expect(await p.waitForExit() == 0)
    }

    @Test func stderrAndExitCodeAreReported() async throws {
        let p = try ProcessStream(["/bin/sh", "-c", "echo out; echo err >&2; exit 7"])
        #expect(try await p.readToEnd() == Array("out\n".utf8))
        #expect(await p.waitForExit() == 7)
        // stderr is drained by its own reader; give it a moment after the exit.
        for _ in 0..<100 where p.stderrText.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(p.stderrText == "err\n")
    }

    @Test func closeKillsOnlyOurChild() async throws {
        let p = try ProcessStream(["sleep", "100"])
        let reader = Task { try await p.read(maxLength: 1) }
        await p.close()
        #expect(p.exitCode == 128 + SIGTERM)
        #expect(kill(p.pid, 0) == -1 && errno == ESRCH)
        // The pending read ended (EOF or a closed error), it did not hang.
        _ = try? await reader.value
    }

    @Test func writeAfterExitIsPeerClosed() async throws {
        let p = try ProcessStream(["true"])
        _ = try await p.readToEnd()
        try await Task.sleep(for: .milliseconds(50))
        await #expect(throws: TransportError.self) {
            for _ in 0..<64 { try await p.write([UInt8](repeating: 0, count: 65536)) }
        }
        await p.close()
    }

    @Test func missingProgramIsASpawnError() {
        #expect(throws: TransportError.self) { _ = try ProcessStream(["/nonexistent/nix-daemon", "--stdio"]) }
    }

    @Test(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
    func unixSocketToARealNixDaemon() async throws {
        let dir = try TestSupport.temporaryDirectory("nb-sock")
        defer { try? FileManager.default.removeItem(at: dir) }
        // NIX_STATE_DIR moves the daemon's socket; the store is a chroot store.
        let daemon = try SpawnedProcess([try #require(TestSupport.which("nix-daemon")), "--store", "local?root=\(dir.path)/root"],
                                        logFile: dir.path + "/daemon.log", environment: ["NIX_STATE_DIR": dir.path + "/state"])
        defer { daemon.stop() }
        let path = dir.path + "/state/daemon-socket/socket"
        for _ in 0..<250 where !FileManager.default.fileExists(atPath: path) { try await Task.sleep(for: .milliseconds(20)) }
        let s = try UnixSocketStream(path: path)
        let (version, _) = try await workerHandshake(s)
        #expect(version == 0x122)
        await s.close()
        // Let the daemon reap its per-connection child before we stop it.
        let children = "/proc/\(daemon.pid)/task/\(daemon.pid)/children"
        for _ in 0..<100 where !((try? String(contentsOfFile: children, encoding: .utf8)) ?? "").isEmpty {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(throws: TransportError.connectFailed(peer: dir.path + "/nope", message: "No such file or directory")) {
            _ = try UnixSocketStream(path: dir.path + "/nope")
        }
    }
}
