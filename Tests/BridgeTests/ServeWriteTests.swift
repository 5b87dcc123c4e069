import Foundation
import NixCore
import NixSigning
import NixStore
import NixTransport
import NixWire
import Testing
import TestSupport
@testable import Bridge

/// `FleetStoreBackend` with a write store, served in-process on a socket pair to our own
/// client: a streamed AddToStoreNar (which real Nix 2.8's `nix copy` does not send: it uses
/// AddMultipleToStore) goes to a real nix-daemon's chroot store frame by frame, with
/// signatures checked there whatever the client asked.
@Suite(.serialized, .tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
final class ServeWriteTests {
    let work: URL
    let key: SigningKey
    /// 4 MiB (many frames), signed by `key`, in the source store.
    let signed: StoreFixture
    /// Unsigned, in the source store.
    let unsigned: StoreFixture
    let source: RemoteStore
    let dest: RemoteStore
    let destURI: String

    init() throws {
        work = try TestSupport.temporaryDirectory("nb-servewrite")
        key = try SigningKey.generate(name: "source-1", in: work)
        signed = try StoreFixture.large(mebibytes: 4, name: "sw-large", seed: 81)
        unsigned = try StoreFixture.make(count: 1, seed: 82, namePrefix: "sw-unsigned")
        let srcRoot = work.appendingPathComponent("src")
        var src = try FixtureStore.create(at: srcRoot, fixture: signed, signWith: key)
        src = FixtureStore(location: .chroot(root: srcRoot), key: nil, infos: src.infos)
        try src.add(unsigned)
        source = try StoreOpener().store(try StoreURI(parsing: "local?root=" + srcRoot.path))
        // The write store's daemon trusts `key` only.
        let daemon = work.appendingPathComponent("dest-daemon")
        try Data("#!/bin/sh\nNIX_CONFIG='trusted-public-keys = \(key.publicKey)' exec nix-daemon \"$@\"\n".utf8).write(to: daemon)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: daemon.path)
        destURI = "local?root=" + work.appendingPathComponent("dest").path
        dest = try StoreOpener(localDaemon: daemon.path).store(try StoreURI(parsing: destURI))
    }

    deinit { try? FileManager.default.removeItem(at: work) }

    /// Runs a server on one end of a socket pair; a client on the other.
    func serve() async throws -> (DaemonConnection, Task<StoreServer.Ending, Never>) {
        let lookup = Lookup(stores: [source], trustedKeys: try TrustedKeys(parsing: key.publicKey))
        let backend = FleetStoreBackend(view: FleetView(lookup: lookup), writeStore: dest)
        let (serverEnd, clientEnd) = try DescriptorStream.pair()
        let info = ClientHandshakeInfo(daemonNixVersion: "nix-bridge test", remoteTrustsUs: .notTrusted)
        let serving = Task { await StoreServer.serve(serverEnd, backend: backend, info: info) }
        return (try await DaemonConnection.open(stream: clientEnd, peer: "nix-bridge"), serving)
    }

    /// Sends `path` from the source store, its NAR streamed chunk by chunk.
    func add(_ path: StorePath, through client: DaemonConnection, dontCheckSigs: Bool) async throws {
        let info = try #require(try await source.queryPathInfo(path))
        let source = self.source
        try await client.addToStoreNar(info, dontCheckSigs: dontCheckSigs) { w in
            try await source.narFromPath(path) { chunk in try await w.write(chunk) }
        }
    }

    @Test func streamedAddToStoreNarReachesTheWriteStore() async throws {
        let (client, serving) = try await serve()
        let path = signed.paths[0]
        try await add(path, through: client, dontCheckSigs: false)
        let got = try #require(try await dest.queryPathInfo(path))
        let expected = try #require(try await source.queryPathInfo(path))
        #expect(got.narHash == expected.narHash && got.narSize == expected.narSize)
        #expect(got.narSize > 4 << 20)
        #expect(got.sigs == expected.sigs)
        #expect(!got.ultimate)
        // The connection goes on after a write.
        #expect(try await client.request(.isValidPath(path)) == .valid(true))
        await client.close()
        #expect(await serving.value == .clientClosed)
        let verify = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    /// dontCheckSigs from a client we call untrusted is not passed on: the write store refuses.
    @Test func unsignedPathIsRefusedEvenWithDontCheckSigs() async throws {
        let (client, serving) = try await serve()
        let path = unsigned.paths[0]
        await #expect(throws: StoreError.self) { try await self.add(path, through: client, dontCheckSigs: true) }
        do {
            try await add(path, through: client, dontCheckSigs: true)
        } catch {
            #expect("\(error)".contains("because it lacks a valid signature"), "\(error)")
        }
        #expect(try await dest.queryPathInfo(path) == nil)
        await client.close()
        _ = await serving.value
    }
}
