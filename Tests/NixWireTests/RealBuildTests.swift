import Foundation
import NixCore
import NixWire
import Testing
import TestSupport

/// BuildDerivation and BuildPathsWithResults against the real daemon, building a one-line
/// /bin/sh derivation in a sandboxed chroot store.
@Suite(.tags(.realNix), .enabled(if: DaemonProcess.isAvailable, "needs the nix CLI and nix-daemon (nix-bin)"))
struct RealBuildTests {
    static let expression = #"derivation { name = "nixwire-build"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "echo built by NixWire $RANDOM > $out"]; }"#

    /// A store whose nix.conf allows sandboxed builds (required in a chroot store).
    static func makeStore() throws -> (root: URL, store: URL, env: [String: String]) {
        let root = try TestSupport.temporaryDirectory("nixwire-build")
        let conf = root.appendingPathComponent("conf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try """
        sandbox = true
        sandbox-paths = /bin /usr /lib /lib64
        build-users-group = nixbld
        substituters =
        experimental-features = nix-command

        """.write(to: conf.appendingPathComponent("nix.conf"), atomically: true, encoding: .utf8)
        return (root, root.appendingPathComponent("store"), ["NIX_CONF_DIR": conf.path])
    }

    /// The derivation as the CLI sees it, turned into the wire form.
    static func instantiate(_ storeURI: String, env: [String: String]) throws -> (StorePath, BasicDerivation) {
        let drvText = try TestSupport.run(["nix-instantiate", "--store", storeURI, "-E", expression], environment: env).trimmed
        let drvPath = try StoreDirectory.default.parse(drvText)
        let json = try TestSupport.run(["nix", "show-derivation", "--store", storeURI, drvText], environment: env).stdout
        let all = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let d = try #require(all[drvText] as? [String: Any])
        let name = String(drvPath.name.dropLast(".drv".count))
        var outputs: [String: DerivationOutput] = [:]
        for (output, o) in try #require(d["outputs"] as? [String: [String: String]]) {
            outputs[output] = try DerivationOutput(path: o["path"] ?? "", hashAlgo: o["hashAlgo"] ?? "", hash: o["hash"] ?? "",
                                                   drvName: name, outputName: output, storeDirectory: .default)
        }
        let drv = BasicDerivation(
            name: name, outputs: outputs, inputSrcs: Set(try (d["inputSrcs"] as? [String] ?? []).map { try StoreDirectory.default.parse($0) }),
            system: try #require(d["system"] as? String), builder: try #require(d["builder"] as? String),
            args: d["args"] as? [String] ?? [], env: d["env"] as? [String: String] ?? [:])
        return (drvPath, drv)
    }

    @Test func buildDerivationBuildsTheOutput() throws {
        let (root, store, env) = try Self.makeStore()
        defer { try? FileManager.default.removeItem(at: root) }
        let storeURI = "local?root=" + store.path
        let (drvPath, drv) = try Self.instantiate(storeURI, env: env)
        let out = try #require(try drv.outputPaths(in: .default)["out"] ?? nil)

        let daemon = try DaemonProcess(root: store, environment: env)
        var d = DaemonDriver(daemon: daemon)
        _ = try d.start()
        let missing = try d.send(.queryMissing([.built(drvPath: .opaque(drvPath), outputs: .all)]))
        let before = try d.send(.isValidPath(out))
        let build = try d.send(.buildDerivation(drvPath: drvPath, drv, .normal))
        let after = try d.send(.isValidPath(out))
        let again = try d.send(.buildPathsWithResults([.built(drvPath: .opaque(drvPath), outputs: .all)], .normal))
        try d.settle()
        daemon.finish()

        #expect(d.outcomes[before]?.response == .valid(false))
        guard case let .missing(m)? = d.outcomes[missing]?.response else {
            Issue.record("no QueryMissing reply: \(String(describing: d.outcomes[missing]))")
            return
        }
        #expect(m.willBuild == [drvPath])
        #expect(m.willSubstitute.isEmpty && m.unknown.isEmpty)
        guard case let .buildResult(res)? = d.outcomes[build]?.response else {
            Issue.record("no build result: \(String(describing: d.outcomes[build]))")
            return
        }
        #expect(res.status == .built, "\(res.errorMsg)")
        #expect(res.timesBuilt == 1)
        #expect(res.startTime > 0 && res.stopTime >= res.startTime)
        #expect(res.builtOutputs["out"]?.outPath == out)
        #expect(d.outcomes[after]?.response == .valid(true))
        // The build's log lines arrived as log events for that request.
        #expect(!(d.outcomes[build]?.logs.isEmpty ?? true))

        guard case let .buildResults(results)? = d.outcomes[again]?.response else {
            Issue.record("no results: \(String(describing: d.outcomes[again]))")
            return
        }
        #expect(results.count == 1)
        #expect(results.first?.path == .built(drvPath: .opaque(drvPath), outputs: .all))
        #expect(results.first?.result.status == .alreadyValid)

        // The CLI agrees the output exists and holds what the builder wrote.
        let text = try String(contentsOf: store.appendingPathComponent(String(StoreDirectory.default.print(out).dropFirst())), encoding: .utf8)
        #expect(text.hasPrefix("built by NixWire"))
    }
}
