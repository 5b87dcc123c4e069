import Foundation
import NixCore
import TestSupport

/// Two real builders with their own keys, and `nix-bridge --stdio` configured for them the
/// way a user would: a wrapper script as `remote-program` that points nix-bridge at its
/// own nix.conf (builders, trusted-public-keys) and ssh_config, as the client's nix.conf
/// must differ (it trusts the builders' or nix-bridge's key, and has no builders).
final class StdioScenario: @unchecked Sendable {
    let env: Fleet
    let key1, key2, stranger, bridgeKey: SigningKey
    /// A 6-path closure on builder 2 only, signed by builder 2.
    let closure: StoreFixture
    /// Two paths on builder 1 signed by builder 1.
    let onBuilder1: StoreFixture
    /// On builder 2, signed by a key nobody trusts.
    let untrusted: StoreFixture
    /// On builder 1, not signed at all.
    let unsigned: StoreFixture
    /// `remote-program` for nix-bridge trusting both builders.
    let wrapper: String
    /// The same, also signing what it serves with `bridgeKey` (secret-key-files).
    let signingWrapper: String

    init() throws {
        env = try Fleet(count: 2, label: "nb-cli-fleet")
        let w = env.work
        key1 = try SigningKey.generate(name: "builder1-1", in: w)
        key2 = try SigningKey.generate(name: "builder2-1", in: w)
        stranger = try SigningKey.generate(name: "stranger-1", in: w)
        bridgeKey = try SigningKey.generate(name: "bridge-1", in: w)
        closure = try StoreFixture.closure(size: 6, rootName: "stdio-root", seed: 61)
        onBuilder1 = try StoreFixture.make(count: 2, seed: 62, namePrefix: "stdio-b1")
        untrusted = try StoreFixture.make(count: 1, seed: 63, namePrefix: "stdio-untrusted")
        unsigned = try StoreFixture.make(count: 1, seed: 64, namePrefix: "stdio-unsigned")
        let b1 = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: onBuilder1, signWith: key1)
        var b1plain = FixtureStore(location: .chroot(root: URL(fileURLWithPath: env.builder(1).storeRoot)), key: nil, infos: b1.infos)
        try b1plain.add(unsigned)
        let root2 = URL(fileURLWithPath: env.builder(2).storeRoot)
        let b2 = try FixtureStore.create(at: root2, fixture: closure, signWith: key2)
        var b2stranger = FixtureStore(location: .chroot(root: root2), key: stranger, infos: b2.infos)
        try b2stranger.add(untrusted)

        let machines = "ssh-ng://builder1 x86_64-linux ; ssh-ng://builder2 x86_64-linux"
        let trusted = "\(key1.publicKey) \(key2.publicKey)"
        wrapper = try Self.wrapper(in: w, name: "bridge", conf: """
            builders = \(machines)
            trusted-public-keys = \(trusted)
            """, sshOpts: env.nixSSHOpts)
        signingWrapper = try Self.wrapper(in: w, name: "bridge-signing", conf: """
            builders = \(machines)
            trusted-public-keys = \(trusted)
            secret-key-files = \(bridgeKey.secretKeyFile.path)
            """, sshOpts: env.nixSSHOpts)
    }

    /// Writes DIR/NAME.conf/nix.conf and an executable DIR/NAME running nix-bridge with it.
    static func wrapper(in dir: URL, name: String, conf: String, sshOpts: String) throws -> String {
        guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        let confDir = dir.appendingPathComponent(name + ".conf")
        try FileManager.default.createDirectory(at: confDir, withIntermediateDirectories: true)
        try Data((conf + "\n").utf8).write(to: confDir.appendingPathComponent("nix.conf"))
        let script = dir.appendingPathComponent(name)
        try Data("""
            #!/bin/sh
            export NIX_CONF_DIR='\(confDir.path)' NIX_USER_CONF_FILES='\(confDir.path)/nix.conf'
            export XDG_CACHE_HOME='\(dir.path)/\(name).cache' NIX_SSHOPTS='\(sshOpts)'
            exec '\(binary)' "$@"

            """.utf8).write(to: script)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        return script.path
    }

    /// The ssh-ng URI that makes Nix 2.8 run the wrapper itself (no ssh for localhost).
    func localURI(_ program: String? = nil) -> String { "ssh-ng://localhost?remote-program=\(program ?? wrapper)" }

    var root: String { StoreDirectory.default.print(closure.roots[0]) }

    /// A fresh empty chroot store (removed with the work directory).
    func scratchStore(_ label: String) -> String {
        "local?root=" + env.work.appendingPathComponent("dest-\(label)-\(UUID().uuidString.prefix(6))").path
    }

    /// `nix path-info --json` of one path in a store, as a dictionary.
    func pathInfo(_ path: String, store: String) throws -> [String: Any]? {
        let out = try env.nix(["path-info", "--json", "--store", store, path], check: false)
        guard out.status == 0 else { return nil }
        return (try JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]])?.first
    }
}
