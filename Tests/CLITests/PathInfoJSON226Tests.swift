import Foundation
import NixCore
import TestSupport
import Testing

/// `path-info --json` prints what Nix 2.26's `nix path-info --json` prints (an object keyed by
/// path), byte for byte, for a builder running Nix 2.26; `--json-list` keeps Nix 2.8's list.
@Suite("path-info --json as Nix 2.26 prints it", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI),
       .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && CLI.isBuilt, "needs nix (nix-bin), sshd, root and a built nix-bridge"),
       .enabled(if: NixVersions.nix226Root != nil || NixVersions.nix226Required,
                Comment(rawValue: NixVersions.nix226Unavailable ?? "")))
final class PathInfoJSON226Tests {
    let root: String
    let env: Fleet

    init() throws {
        root = try #require(NixVersions.nix226Root, Comment(rawValue: NixVersions.nix226Unavailable ?? ""))
        env = try Fleet(count: 1, roots: [root], label: "nb-cli-json226")
    }

    /// Nix 2.26 itself, inside its root, on the builder's own store.
    @discardableResult
    func nix226(_ args: [String], check: Bool = true) throws -> TestSupport.Output {
        let dir = URL(fileURLWithPath: env.builder(1).storeRoot).deletingLastPathComponent().path
        return try NixVersions.run(in: root, binds: [dir, env.work.path],
                                   ["nix", "--extra-experimental-features", "nix-command"] + args,
                                   environment: ["NIX_CONFIG": "substituters =\nsandbox = false"], check: check)
    }

    var storeURI: String { "local?root=\(env.builder(1).storeRoot)" }

    @Test func objectKeyedByPathAsNix226() throws {
        // A path with a reference (text, content-addressed), one added flat, one signed.
        let file = try env.write("plain.txt", "plain\n")
        let plain = try nix226(["store", "add-file", "--store", storeURI, file]).trimmed
        let b = try nix226(["eval", "--raw", "--store", storeURI, "--impure", "--expr",
                            "builtins.toFile \"a\" \"refers to ${builtins.toFile \"b\" \"x\"}\""]).trimmed
        let key = try SigningKey.generate(name: "b226-1", in: env.work)
        try nix226(["store", "sign", "--store", storeURI, "-k", key.secretKeyFile.path, plain])
        let missing = StoreDirectory.default.path + "/00000000000000000000000000000000-not-there"
        for args in [["--json"], ["--json", "-r"], ["--json", "--sigs"]] {
            let paths = args.contains("-r") ? [b] : [plain, b, missing]
            let ours = try env.bridge(["path-info", "--store", "ssh-ng://builder1"] + args + paths)
            #expect(ours.status == 0, "\(ours.stderr)")
            let nix = try nix226(["path-info", "--store", storeURI] + args + paths)
            #expect(ours.text == nix.text, "path-info \(args.joined(separator: " "))")
        }
        let object = try #require(try JSONSerialization.jsonObject(with: try env.bridge(
            ["path-info", "--json", "-r", "--store", "ssh-ng://builder1", b]).stdout) as? [String: Any])
        #expect(object.count == 2, "the closure of the text path: itself and its reference")

        // The list of Nix 2.8, dependencies first, with its "path" fields.
        let list = try env.bridge(["path-info", "--json-list", "-r", "--store", "ssh-ng://builder1", b])
        #expect(list.status == 0, "\(list.stderr)")
        let entries = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        #expect(entries.count == 2)
        #expect(entries.last?["path"] as? String == b)
        let bad = try env.bridge(["path-info", "--json-list", "--store", "ssh-ng://builder1", missing])
        #expect(bad.status == 1)
        #expect(bad.stderr == "error: path '\(missing)' is not valid\n")
    }
}
