import Foundation
import NixCore
import NixStore
import NixTransport
import Testing
import TestSupport

/// `ssh-transport = auto`: requests over libssh2's pipelined session, NARs through the user's
/// OpenSSH client (through a ControlMaster), when that client reads the ssh_config nix-bridge
/// read; when it cannot connect, NARs go over libssh2 after all.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class NARTransportTests {
    let fleet: Fleet
    let work: URL

    init() throws {
        fleet = try Fleet(count: 1)
        work = try TestSupport.temporaryDirectory("nb-nar-transport")
    }

    deinit {
        fleet.stop()
        try? FileManager.default.removeItem(at: work)
    }

    var uri: StoreURI { get throws { try StoreURI(parsing: fleet.builders[0].storeURI) } }

    func opener(sameSSHConfig: Bool = true, sshOpts: String? = nil) throws -> StoreOpener {
        var o = StoreOpener()
        o.sshConfig = try SSHConfig.load(path: fleet.sshConfig)
        o.nixSSHOpts = sshOpts ?? fleet.nixSSHOpts
        o.sshConfigIsOpenSSHs = sameSSHConfig
        o.openSSHMaster = OpenSSHMaster(directory: work.appendingPathComponent("masters").path)
        return o
    }

    func addLarge() throws -> StorePath {
        var big = Data(count: 3 << 20)
        for i in stride(from: 0, to: big.count, by: 4096) { big[i] = UInt8(truncatingIfNeeded: i / 4096) }
        let file = work.appendingPathComponent("big.bin")
        try big.write(to: file)
        let out = try TestSupport.run(["nix-store", "--store", fleet.builders[0].localStoreURI, "--add", file.path])
        return try StoreDirectory.default.parse(out.trimmed)
    }

    @Test func whoCarriesNARs() throws {
        let o = try opener()
        #expect(try o.sshClient(uri).client == .libssh2)
        #expect(try o.narSSHClient(uri).client == .openssh)
        // Only where ssh would read the same ssh_config, with a ControlMaster, and when asked for auto.
        let other = try opener(sameSSHConfig: false).narSSHClient(uri)
        #expect(other.client == .libssh2 && other.reason.contains("another ssh_config"), "\(other)")
        var noMaster = try opener()
        noMaster.openSSHMaster = nil
        let unshared = try noMaster.narSSHClient(uri)
        #expect(unshared.client == .libssh2 && unshared.reason.contains("ControlMaster"), "\(unshared)")
        #expect(try o.narSSHClient(try StoreURI(parsing: fleet.builders[0].storeURI + "?ssh-transport=libssh2")).client == .libssh2)
        var serving = try opener()
        serving.narsMayUseOpenSSH = false
        let served = try serving.narSSHClient(uri)
        #expect(served.client == .libssh2 && served.reason.contains("channel window"), "\(served)")
        var explicit = try opener()
        explicit.sshTransport = .libssh2
        #expect(try explicit.narSSHClient(uri).client == .libssh2)
    }

    @Test func lookupOverLibssh2NARThroughOpenSSH() async throws {
        let p = try addLarge()
        let o = try opener()
        let socket = try #require(o.openSSHClient(try uri).controlPath)
        let s = try o.store(try uri)
        let info = try #require(try await s.queryPathInfo(p))
        #expect(!FileManager.default.fileExists(atPath: socket), "the lookup started no ssh")
        let got = ByteBox()
        try await s.narFromPath(p) { got.append($0) }
        #expect(HashSink.hash(.sha256, got.bytes) == info.narHash)
        #expect(FileManager.default.fileExists(atPath: socket), "the NAR came through nix-bridge's ControlMaster")
        #expect(await s.narConnectFailure == nil)
        // A second NAR reuses the connection; requests still flow on the first.
        let again = ByteBox()
        try await s.narFromPath(p, ownConnection: true) { again.append($0) }
        #expect(again.bytes == got.bytes)
        #expect(try await s.isValidPath(p))
        await s.close()
        await o.openSSHClient(try uri).stopMaster()
    }

    @Test func sshThatCannotConnectLeavesNARsOnLibssh2() async throws {
        let p = try addLarge()
        let o = try opener(sshOpts: "-F \(work.path)/no-such-ssh-config")
        let s = try o.store(try uri)
        let info = try #require(try await s.queryPathInfo(p))
        let got = ByteBox()
        try await s.narFromPath(p) { got.append($0) }
        #expect(HashSink.hash(.sha256, got.bytes) == info.narHash)
        let failure = try #require(await s.narConnectFailure)
        #expect("\(failure)".contains("no-such-ssh-config"), "\(failure)")
        await s.close()
    }
}
