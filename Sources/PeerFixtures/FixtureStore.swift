import Foundation
import NixCore

/// A real Nix store holding fixture content, made with the real CLI: a chroot store
/// (`local?root=DIR`, which Nix 2.8 opens itself, no daemon needed) or the system store.
///
/// ```swift
/// let key = try SigningKey.generate(name: "fixture-1", in: dir)
/// let store = try FixtureStore.create(at: dir.appendingPathComponent("store"),
///                                     fixture: try .make(count: 1_000, seed: 1), signWith: key)
/// // store.storeURI == "local?root=<dir>/store"; store.infos has narHash/narSize/references
/// ```
public struct FixtureStore: Sendable {
    /// Where the store lives.
    public enum Location: Sendable, Hashable {
        /// A chroot store: `/nix/store` paths kept under `root/nix/store`.
        case chroot(root: URL)
        /// The machine's own `/nix/store`.
        case system
    }

    public let location: Location
    /// The key every imported path was signed with, if any.
    public let key: SigningKey?
    /// Path infos of every fixture path imported so far, as written (without signatures).
    public private(set) var infos: [PathInfo] = []

    /// `local?root=DIR` for a chroot store; nil for the system store.
    public var storeURI: String? {
        if case let .chroot(root) = location { return "local?root=\(root.path)" }
        return nil
    }

    /// `--store URI` for nix commands, or nothing for the system store.
    public var storeArguments: [String] { storeURI.map { ["--store", $0] } ?? [] }

    /// A store already holding `infos` (e.g. to sign it later with another key).
    public init(location: Location, key: SigningKey?, infos: [PathInfo] = []) {
        self.location = location
        self.key = key
        self.infos = infos
    }

    /// A fresh directory for a chroot store, in RAM (`/dev/shm`) when it can be: importing
    /// 10,000 paths takes ≈1.5 s there and 3-13 s on a busy disk (SQLite and file syncs).
    /// The caller removes it.
    public static func scratchDirectory(_ label: String = "nb-fixture-store") throws -> URL {
        let shm = URL(fileURLWithPath: "/dev/shm")
        guard FileManager.default.isWritableFile(atPath: shm.path) else { return try PeerFixtures.temporaryDirectory(label) }
        let url = shm.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Makes a chroot store at `root` (new or empty: every path in it gets signed) holding
    /// `fixture`, every path signed with `key`.
    public static func create(at root: URL, fixture: StoreFixture, signWith key: SigningKey? = nil) throws -> FixtureStore {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var store = FixtureStore(location: .chroot(root: root), key: key)
        try store.add(fixture)
        return store
    }

    /// Imports `fixture` into the system store (`/nix/store`), signed with `key`.
    public static func system(fixture: StoreFixture, signWith key: SigningKey? = nil) throws -> FixtureStore {
        var store = FixtureStore(location: .system, key: key)
        try store.add(fixture)
        return store
    }

    /// Imports `fixture` (its references must be in it or in the store already) and signs its
    /// paths with the store's key (`--all` for a chroot store's first fixture). Returns the new
    /// paths' infos.
    @discardableResult
    public mutating func add(_ fixture: StoreFixture) throws -> [PathInfo] {
        let added = try importFixture(fixture)
        // A chroot store's first fixture is all it holds: `--all` skips parsing every path.
        if case .chroot = location, infos.isEmpty { try signAll() } else { try sign(fixture.printedPaths) }
        infos += added
        return added
    }

    /// Streams the export of `fixture` into `nix-store --import`, never holding it whole.
    public func importFixture(_ fixture: StoreFixture) throws -> [PathInfo] {
        let command = ["nix-store"] + storeArguments + ["--import"]
        var infos: [PathInfo] = []
        let output = try ProcessPipe.run(command) { write in
            infos = try fixture.writeExport(to: write)
        }
        let imported = output.text.split(separator: "\n").count
        guard imported == fixture.items.count else {
            throw FixtureStoreError(command: command, message: "imported \(imported) of \(fixture.items.count) paths", stderr: output.stderr)
        }
        return infos
    }

    /// `nix store sign -k KEY` on `paths` (full store paths), in batches that fit a command line.
    public func sign(_ paths: [String]) throws {
        guard let key else { return }
        var start = 0
        while start < paths.count {
            let end = min(start + 2_000, paths.count)
            try nix(["store", "sign", "-k", key.secretKeyFile.path] + paths[start..<end])
            start = end
        }
    }

    /// `nix store sign -k KEY --all`: every path of the store (chroot stores only).
    public func signAll() throws {
        guard let key else { return }
        precondition(location != .system, "signing all of the system store is not a fixture's job")
        try nix(["store", "sign", "-k", key.secretKeyFile.path, "--all"])
    }

    /// What the store says about `paths` (default: every fixture path): `nix path-info --json
    /// --sigs`, parsed into `PathInfo`s keyed by path.
    public func queryPathInfos(_ paths: [String]? = nil) throws -> [StorePath: PathInfo] {
        let list = paths ?? infos.map { StoreDirectory.default.print($0.path) }
        var result: [StorePath: PathInfo] = [:]
        var start = 0
        while start < list.count {
            let end = min(start + 2_000, list.count)
            let out = try nix(["path-info", "--json", "--sigs"] + list[start..<end])
            for info in try PathInfoJSON.parse(out.stdout) { result[info.path] = info }
            start = end
        }
        return result
    }

    /// Runs `nix <args>` against this store (`--store` added) with nix-command enabled.
    @discardableResult
    public func nix(_ args: [String], check: Bool = true) throws -> PeerFixtures.Output {
        guard let first = args.first else { return try PeerFixtures.nix(args, check: check) }
        // `nix store sign`: the subcommand words come before the options.
        let words = first == "store" && args.count > 1 ? 2 : 1
        return try PeerFixtures.nix(Array(args[..<words]) + storeArguments + Array(args[words...]), check: check)
    }

    /// Runs `nix-store <args>` against this store.
    @discardableResult
    public func nixStore(_ args: [String], check: Bool = true) throws -> PeerFixtures.Output {
        try PeerFixtures.run(["nix-store"] + storeArguments + args, check: check)
    }
}

/// A binary-cache signing key pair made by `nix-store --generate-binary-cache-key`.
public struct SigningKey: Sendable {
    public let name: String
    /// The secret key file (for `-k` / `secret-key-files`).
    public let secretKeyFile: URL
    /// `name:base64`, as `trusted-public-keys` wants it.
    public let publicKey: String

    /// Generates a key pair, writing `NAME.secret` and `NAME.public` into `directory`.
    public static func generate(name: String, in directory: URL) throws -> SigningKey {
        let secret = directory.appendingPathComponent("\(name).secret")
        let pub = directory.appendingPathComponent("\(name).public")
        try PeerFixtures.run(["nix-store", "--generate-binary-cache-key", name, secret.path, pub.path])
        let text = try String(contentsOf: pub, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return SigningKey(name: name, secretKeyFile: secret, publicKey: text)
    }
}

/// A fixture store command that did not do what it should.
public struct FixtureStoreError: Error, CustomStringConvertible {
    public var command: [String]
    public var message: String
    public var stderr: String
    public var description: String { "\(command.joined(separator: " ")): \(message)\(stderr.isEmpty ? "" : ": " + stderr)" }
}
