import Foundation
import NixCore
import NixStore
import NixTransport
import NixWire
import Testing
import TestSupport

/// The store client against real sshd + nix-daemon (Nix 2.8) on loopback.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class RemoteStoreTests {
    let fleet: Fleet
    let opener: StoreOpener
    let work: URL

    init() throws {
        fleet = try Fleet(count: 2)
        var o = StoreOpener()
        o.sshConfig = try SSHConfig.load(path: fleet.sshConfig)
        opener = o
        work = try TestSupport.temporaryDirectory("nb-remote-store")
    }

    deinit {
        fleet.stop()
        try? FileManager.default.removeItem(at: work)
    }

    /// Adds a file (content-addressed) to builder `n`'s store; returns the store path.
    func add(_ n: Int, name: String, contents: Data) throws -> StorePath {
        let file = work.appendingPathComponent(name)
        try contents.write(to: file)
        let out = try TestSupport.run(["nix-store", "--store", "local?root=\(fleet.builders[n - 1].storeRoot)", "--add", file.path])
        return try StoreDirectory.default.parse(out.trimmed)
    }

    func store(_ n: Int, _ extra: String = "") throws -> RemoteStore {
        try opener.store(try StoreURI(parsing: fleet.builders[n - 1].storeURI + extra))
    }

    @Test func handshakeOverSSH() async throws {
        let s = try store(1)
        let hs = try await s.handshake()
        #expect(hs.version.minor == 34)
        #expect(hs.info.daemonNixVersion == "2.8.0")
        await s.close()
    }

    @Test func pathInfoMatchesNix() async throws {
        let p = try add(1, name: "hello.txt", contents: Data("hello\n".utf8))
        let s = try store(1)
        let info = try #require(try await s.queryPathInfo(p))
        let json = try TestSupport.nix(["path-info", "--json", "--store", "local?root=\(fleet.builders[0].storeRoot)",
                                        StoreDirectory.default.print(p)])
        let nixInfo = try #require((try JSONSerialization.jsonObject(with: json.stdout) as? [[String: Any]])?.first)
        #expect(info.narHash == (try Hash(parsing: try #require(nixInfo["narHash"] as? String))))
        #expect(Int(info.narSize) == nixInfo["narSize"] as? Int)
        #expect(info.ca?.description == nixInfo["ca"] as? String)
        #expect(try await s.isValidPath(p))
        // The other builder does not have it.
        let s2 = try store(2)
        #expect(try await s2.queryPathInfo(p) == nil)
        #expect(try await s2.queryValidPaths([p]).isEmpty)
        await s.close()
        await s2.close()
    }

    @Test func pipelinedQueriesAllAnswered() async throws {
        var paths: [StorePath] = []
        for i in 0..<60 { paths.append(try add(1, name: "f\(i)", contents: Data("file \(i)\n".utf8))) }
        let missing = try StorePath(baseName: "00000000000000000000000000000000-missing")
        var o = opener
        o.maxConnections = 2
        let s = try o.store(try StoreURI(parsing: fleet.builders[0].storeURI))
        let infos = try await s.queryPathInfos(paths + [missing])
        #expect(infos.count == paths.count + 1)
        for p in paths { #expect(infos[p]??.narSize ?? 0 > 0) }
        let answer = try #require(infos[missing])
        #expect(answer == nil)
        #expect(try await s.queryValidPaths(Set(paths + [missing])) == Set(paths))
        await s.close()
    }

    @Test func narFromPathEqualsNixDump() async throws {
        var big = Data(count: 3 << 20)
        for i in stride(from: 0, to: big.count, by: 4096) { big[i] = UInt8(truncatingIfNeeded: i / 4096) }
        let p = try add(1, name: "big.bin", contents: big)
        let s = try store(1)
        let collected = ByteBox()
        try await s.narFromPath(p) { collected.append($0) }
        let dump = try TestSupport.nix(["store", "dump-path", "--store", "local?root=\(fleet.builders[0].storeRoot)",
                                        StoreDirectory.default.print(p)])
        #expect(collected.bytes == [UInt8](dump.stdout))
        let info = try #require(try await s.queryPathInfo(p))
        #expect(HashSink.hash(.sha256, collected.bytes) == info.narHash)
        // The connection still works after a NAR.
        #expect(try await s.isValidPath(p))
        await s.close()
    }

    @Test func wrongPinnedHostKeyRefusedBeforeProtocol() async throws {
        let other = fleet.builders[1].hostKeyBase64
        let s = try store(1, "?base64-ssh-public-host-key=\(other)")
        var message = ""
        do { _ = try await s.handshake() } catch { message = "\(error)" }
        #expect(message.contains("host key mismatch"))
    }

    @Test func missingRemoteProgramIsDiagnosed() async throws {
        let s = try store(1, "?remote-program=/nonexistent/nix-daemon")
        var failure: StoreError?
        do { _ = try await s.handshake() } catch { failure = error }
        guard case let .closedDuringHandshake(peer, stderr)? = failure else {
            Issue.record("expected the remote side to close during the handshake, got \(String(describing: failure))")
            return
        }
        #expect(peer.contains("builder1"))
        #expect(stderr.contains("No such file") || stderr.contains("not found"))
    }

    @Test func garbageFromPeerIsATypedErrorWithBoundedMemory() async throws {
        // A "daemon" that prints shell noise forever instead of the protocol.
        let script = work.appendingPathComponent("noisy.sh")
        try "#!/bin/sh\nwhile :; do echo 'Welcome to builder1! Have a nice day.'; done\n".write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)
        let s = try store(1, "?remote-program=\(script.path)")
        var failure: StoreError?
        do { _ = try await s.handshake() } catch { failure = error }
        guard case let .protocolError(_, e)? = failure else {
            Issue.record("expected a protocol error, got \(String(describing: failure))")
            return
        }
        #expect("\(e)".lowercased().contains("magic") || "\(e)".contains("protocol"))
    }

    @Test func peerKilledMidNARFailsWithoutHanging() async throws {
        var big = Data(count: 48 << 20)
        for i in stride(from: 0, to: big.count, by: 512) { big[i] = UInt8(truncatingIfNeeded: i) }
        let p = try add(1, name: "huge.bin", contents: big)
        let s = try store(1)
        _ = try await s.handshake()
        let fleet = self.fleet
        let received = ByteBox()
        let killed = KillOnce()
        do {
            try await s.narFromPath(p) { chunk in
                received.append(chunk)
                // Once data flows, kill the builder's session processes (children of our sshd).
                if received.count > 1 << 20 { killed.run { ProcessTree.killDescendants(of: fleet.sshdPIDs[0]) } }
                usleep(2_000)
            }
            Issue.record("NAR transfer survived the peer's death (\(received.count) bytes)")
        } catch {
            #expect(!"\(error)".isEmpty)
        }
        #expect(received.count < big.count)
    }
}

/// Collects bytes from a NAR sink.
final class ByteBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data: [UInt8] = []
    func append(_ b: [UInt8]) { lock.withLock { data += b } }
    var bytes: [UInt8] { lock.withLock { data } }
    var count: Int { lock.withLock { data.count } }
}

final class KillOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func run(_ body: () -> Void) {
        let first = lock.withLock { () -> Bool in defer { done = true }; return !done }
        if first { body() }
    }
}
