import Foundation
import NixTransport
import Testing
import TestSupport

@Suite("Fleet harness with real Nix", .timeLimit(.minutes(1)), .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasFleet && TestSupport.hasNix, "needs root, sshd and the nix CLI"))
struct FleetTests {
    @Test func realNixPingsEveryBuilderThroughTheConfig() async throws {
        let fleet = try Fleet(count: 2)
        defer { fleet.stop() }
        for b in fleet.builders {
            let out = try TestSupport.run(["nix", "--extra-experimental-features", "nix-command", "store", "ping",
                                           "--store", b.storeURI], environment: ["NIX_SSHOPTS": fleet.nixSSHOpts])
            // nix 2.8 prints the ping result on stderr.
            #expect((out.text + out.stderr).contains("Store URL: \(b.storeURI)"))
            #expect((out.text + out.stderr).contains("Version: \(try installedNixVersion())"))
        }
    }

    @Test func eachBuilderHasItsOwnStore() async throws {
        let fleet = try Fleet(count: 2)
        defer { fleet.stop() }
        try Self.checkOwnStores(fleet)
    }

    static func checkOwnStores(_ fleet: Fleet) throws {
        let file = fleet.directory.appendingPathComponent("hello.txt")
        try "hello from the fleet\n".write(to: file, atomically: true, encoding: .utf8)
        // nix-store --add on builder 1 over real ssh; the path lands in builder 1's chroot store only.
        let path = try fleet.ssh(1, "nix-store --add \(file.path)").trimmed
        #expect(path.hasPrefix("/nix/store/"))
        #expect(FileManager.default.fileExists(atPath: fleet.builders[0].storeRoot + path))
        #expect(!FileManager.default.fileExists(atPath: fleet.builders[1].storeRoot + path))
        // Real Nix sees it through ssh-ng://builder1 and not through builder2.
        let env = ["NIX_SSHOPTS": fleet.nixSSHOpts]
        let info = try TestSupport.run(["nix", "--extra-experimental-features", "nix-command", "path-info",
                                        "--store", "ssh-ng://builder1", path], environment: env)
        #expect(info.trimmed == path)
        let miss = try TestSupport.run(["nix", "--extra-experimental-features", "nix-command", "path-info",
                                        "--store", "ssh-ng://builder2", path], environment: env, check: false)
        #expect(miss.status != 0)
        // Shell start-up output cannot corrupt the protocol: HOME is the builder's own.
        #expect(try fleet.ssh(1, "echo $HOME").trimmed == fleet.builders[0].home)
        // The machines-file form of the host key decodes to the line in known_hosts.
        let line = String(decoding: try #require(Data(base64Encoded: fleet.builders[0].hostKeyBase64)), as: UTF8.self)
        #expect(line == fleet.builders[0].hostKeyLine)
    }
}

@Suite("LatencyProxy", .timeLimit(.minutes(1)), .tags(.realSSHD), .enabled(if: TestSupport.hasFleet, "needs root, sshd and ssh-keygen"))
struct LatencyProxyTests {
    @Test func sshThroughTheProxyPaysTheDelayEachWay() async throws {
        try await withFleet { fleet in
            let proxy = try LatencyProxy(targetPort: fleet.builders[0].port, delay: .milliseconds(5))
            defer { proxy.stop() }
            var t = fleetTarget(fleet)
            t.port = proxy.port  // the host key is looked up under the alias, so it still verifies
            let s = try await SSHChannelStream.connect(to: t, command: "cat")
            let start = ContinuousClock.now
            try await s.write(Array("ping".utf8))
            #expect(try await s.read(exactly: 4) == Array("ping".utf8))
            #expect(ContinuousClock.now - start >= .milliseconds(10))
            // Bulk data still flows intact.
            let data = [UInt8](repeating: 0x5a, count: 4 << 20)
            let writer = Task { try await s.write(data); await s.closeWrite() }
            #expect(try await s.readToEnd() == data)
            try await writer.value
            await s.close()
        }
    }
}
