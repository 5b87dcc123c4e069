import Foundation
import NixCore
import TestSupport
import Testing

/// `bridge-write-store`: real Nix 2.8 `nix copy --to` nix-bridge lands in the write store,
/// which checks signatures against its own trusted keys (the client is not trusted).
@Suite("nix-bridge --stdio with bridge-write-store", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class StdioWriteTests {
    let f: StdioScenario
    /// The write store's root (a fresh chroot store) and the remote-program writing to it.
    let writeRoot: URL
    let writeProgram: String

    init() throws {
        f = try StdioScenario()
        writeRoot = f.env.work.appendingPathComponent("write-store")
        // Through --option, so the write store's nix-daemon (which reads the same nix.conf)
        // does not see a setting it does not know.
        writeProgram = try Self.script(in: f.env.work, name: "bridge-writing",
                                       "exec '\(f.wrapper)' --option bridge-write-store 'local?root=\(writeRoot.path)' \"$@\"")
    }

    static func script(in dir: URL, name: String, _ line: String) throws -> String {
        let script = dir.appendingPathComponent(name)
        try Data("#!/bin/sh\n\(line)\n".utf8).write(to: script)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        return script.path
    }

    /// A chroot store holding one new path, signed by `key` (or not at all).
    func source(seed: UInt64, signWith key: SigningKey?) throws -> (store: String, path: String) {
        let fixture = try StoreFixture.make(count: 1, seed: seed, namePrefix: "stdio-write")
        let root = f.env.work.appendingPathComponent("write-src-\(seed)")
        _ = try FixtureStore.create(at: root, fixture: fixture, signWith: key)
        return ("local?root=" + root.path, StoreDirectory.default.print(fixture.paths[0]))
    }

    var writeStore: String { "local?root=" + writeRoot.path }

    @Test func signedPathIsCopiedToTheWriteStore() throws {
        let (src, p) = try source(seed: 71, signWith: f.key1)
        let out = try f.env.nix(["copy", "--from", src, "--to", f.localURI(writeProgram), p], check: false)
        #expect(out.status == 0, "\(out.stderr)")
        let sigs = try f.env.nix(["path-info", "--sigs", "--store", writeStore, p], check: false)
        #expect(sigs.status == 0, "\(sigs.stderr)")
        #expect(sigs.text.contains(p) && sigs.text.contains("builder1-1:"), "\(sigs.text)")
        let verify = try TestSupport.run(["nix-store", "--store", writeStore, "--verify", "--check-contents"],
                                         environment: f.env.environment, check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        // The same NAR as the source's.
        let hashes = try [src, writeStore].map { try f.pathInfo(p, store: $0)?["narHash"] as? String }
        #expect(hashes[0] != nil && hashes[0] == hashes[1])
    }

    @Test func unsignedPathIsRefusedByTheWriteStore() throws {
        let (src, p) = try source(seed: 72, signWith: nil)
        let out = try f.env.nix(["copy", "--from", src, "--to", f.localURI(writeProgram), p], check: false)
        #expect(out.status == 1)
        #expect(out.stderr.contains("because it lacks a valid signature"), "\(out.stderr)")
        #expect(try f.env.nix(["path-info", "--store", writeStore, p], check: false).status == 1)
    }

    /// A path signed by a key the write store does not trust is refused the same way.
    @Test func pathSignedByAStrangerIsRefused() throws {
        let (src, p) = try source(seed: 73, signWith: f.stranger)
        let out = try f.env.nix(["copy", "--from", src, "--to", f.localURI(writeProgram), p], check: false)
        #expect(out.status == 1)
        #expect(out.stderr.contains("because it lacks a valid signature"), "\(out.stderr)")
        #expect(try f.env.nix(["path-info", "--store", writeStore, p], check: false).status == 1)
    }

    /// With the write store also a substituter of nix-bridge, what was written is served;
    /// signatures a client adds (`nix store sign`) are refused, as Nix's daemon refuses them to
    /// a user it told is not trusted.
    @Test func writtenPathIsServedAndAddedSignaturesAreRefused() throws {
        let program = try Self.script(in: f.env.work, name: "bridge-writing-serving", """
            exec '\(f.wrapper)' --option bridge-write-store '\(writeStore)' --option extra-substituters '\(writeStore)' "$@"
            """)
        let (src, p) = try source(seed: 74, signWith: f.key1)
        // Not there yet: cached as missing (for an hour by default), forgotten once written.
        let before = try f.env.nix(["path-info", "--store", f.localURI(program), p], check: false)
        #expect(before.status == 1)
        let copy = try f.env.nix(["copy", "--from", src, "--to", f.localURI(program), p], check: false)
        #expect(copy.status == 0, "\(copy.stderr)")
        let served = try f.env.nix(["path-info", "--store", f.localURI(program), p], check: false)
        #expect(served.status == 0, "\(served.stderr)")
        #expect(served.text == p + "\n")
        let sign = try f.env.nix(["store", "sign", "--store", f.localURI(program), "--key-file", f.key2.secretKeyFile.path, p],
                                 check: false)
        #expect(sign.status == 1)
        #expect(sign.stderr.contains("you are not privileged to add signatures"), "\(sign.stderr)")
        let sigs = try f.env.nix(["path-info", "--sigs", "--store", writeStore, p], check: false)
        #expect(sigs.text.contains("builder1-1:") && !sigs.text.contains("builder2-1:"), "\(sigs.text) \(sigs.stderr)")
    }
}
