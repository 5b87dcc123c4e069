import ArgumentParser
import Foundation
import NixCore
import PeerFixtures

/// `nix-bridge-bench serve`: real Nix 2.8 using `nix-bridge --stdio` as an ssh-ng store
/// (`ssh-ng://localhost?remote-program=...`, which Nix runs without ssh) on a 3-builder
/// loopback fleet (`BenchFleet`, as `substitute`), beside real Nix going to the builders:
///  (a) a closure held only by the 3rd builder: `nix-store -r` with nix-bridge as the only
///      substituter vs the 3 builders as `--substituters`;
///  (b) `nix copy --from` a big closure through nix-bridge vs straight from its builder.
/// nix-bridge is configured with the whole fleet in both; its narinfo cache starts empty
/// in every run. Every destination is a fresh chroot store in /dev/shm.
///
///     swift build -c release --product nix-bridge --product nix-bridge-bench
///     .build/release/nix-bridge-bench serve
struct ServeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Real Nix through nix-bridge --stdio (ssh-ng) vs real Nix straight to the builders."
    )

    @Option(help: "Size of the closure held only by the 3rd builder.") var smallClosure = 51
    @Option(help: "Size of the closure copied from one builder.") var bigClosure = 1_000
    @Option(help: "Runs of each fast measurement (the median is reported).") var runs = 3
    @Option(help: "Seconds real Nix may take to substitute through the 3 substituters.") var nixTimeout = 120
    @Option(help: "The nix-bridge executable (default: next to this one).") var nixBridge: String?
    @Flag(help: "Skip real Nix substituting through the 3 substituters (≈46 s).") var skipNixSubstituters = false
    @Flag(help: "Also time the closure walk alone (nix path-info --recursive) both ways.") var diagnose = false

    func run() throws {
        let me = self
        try Bench.block { try await me.measure() }
    }

    func measure() async throws {
        let binary = try nixBridge ?? Self.sibling("nix-bridge")
        let bench = try BenchFleet(builders: 3)
        defer { bench.stop() }
        let setup = ContinuousClock.now
        let small = try StoreFixture.closure(size: smallClosure, rootName: "third-only-root", seed: 51)
        try bench.fill(builder: 3, with: small)
        let big = try StoreFixture.closure(size: bigClosure, rootName: "big-root", seed: 1000)
        try bench.fill(builder: 1, with: big)
        print("serve: fleet filled in \(Bench.format(Bench.seconds(ContinuousClock.now - setup))); load \(Self.loadAverage)")
        let bridge = ServeBridge(bench: bench, binary: binary)
        var rows: [BenchRow] = []
        rows += try thirdBuilderRows(bench, bridge, small)
        rows += try bigClosureRows(bench, bridge, big)
        Bench.printTable(rows)
        print("load average after: \(Self.loadAverage)")
    }

    // MARK: (a)

    func thirdBuilderRows(_ bench: BenchFleet, _ bridge: ServeBridge, _ fixture: StoreFixture) throws -> [BenchRow] {
        let root = StoreDirectory.default.print(try fixture.roots.first.orThrow("closure has no root"))
        let count = fixture.items.count
        func realise(_ substituters: String) throws -> (Double, Int) {
            let dest = try FixtureStore.scratchDirectory("nb-bench-dest")
            defer { try? FileManager.default.removeItem(at: dest) }
            let before = bench.sshLogins()
            let (t, _) = try bench.timeNix(["nix-store", "-r", root, "--store", "local?root=\(dest.path)",
                                            "--option", "substituters", substituters,
                                            "--option", "trusted-public-keys", bench.trustedKeys], timeout: nixTimeout)
            try Self.checkValid(dest, count: count)
            return (t, bench.sshLogins() - before)
        }
        var ours: [Double] = []
        var logins = 0
        for _ in 0..<runs {
            let (t, l) = try realise(try bridge.uri())
            ours.append(t)
            logins = l
        }
        print("serve (a): through nix-bridge \(ours.map(Bench.format)), \(logins) SSH logins; load \(Self.loadAverage)")
        let o = Bench.median(ours)
        var row = BenchRow(job: "\(count)-path closure on the 3rd of 3 builders (nix-store -r)",
                           ours: Bench.format(o) + " (\(logins) logins)", nix: "skipped", ratio: "-", target: "≥20x", met: nil)
        guard !skipNixSubstituters else { return [row] }
        let subs = bench.fleet.builders.map { "ssh-ng://\($0.name)" }.joined(separator: " ")
        do {
            let (t, l) = try realise(subs)
            print("serve (a): 3 builders as substituters \(Bench.format(t)), \(l) SSH logins; load \(Self.loadAverage)")
            row.nix = Bench.format(t) + " (\(l) logins)"
            row.ratio = String(format: "%.0fx", t / o)
            row.met = t / o >= 20
        } catch {
            print("serve (a): real Nix: \(error)")
            row.nix = "> \(nixTimeout) s (timed out)"
            row.ratio = String(format: "> %.0fx", Double(nixTimeout) / o)
            row.met = Double(nixTimeout) / o >= 20
        }
        return [row]
    }

    // MARK: (b)

    func bigClosureRows(_ bench: BenchFleet, _ bridge: ServeBridge, _ fixture: StoreFixture) throws -> [BenchRow] {
        let root = StoreDirectory.default.print(try fixture.roots.first.orThrow("closure has no root"))
        let count = fixture.items.count
        func copy(from uri: String) throws -> Double {
            let dest = try FixtureStore.scratchDirectory("nb-bench-dest")
            defer { try? FileManager.default.removeItem(at: dest) }
            let (t, _) = try bench.timeNix(["nix", "copy", "--from", uri, root, "--to", "local?root=\(dest.path)", "--no-check-sigs"])
            try Self.checkValid(dest, count: count)
            return t
        }
        if diagnose {
            // The metadata half alone: the closure walk (one QueryPathInfo per path).
            for uri in [try bridge.uri(), "ssh-ng://builder1"] {
                let (t, _) = try bench.timeNix(["nix", "path-info", "--recursive", "--store", uri, root])
                print("serve (b): nix path-info --recursive --store \(uri.hasPrefix("ssh-ng://localhost") ? "nix-bridge" : uri): \(Bench.format(t))")
            }
        }
        var ours: [Double] = [], direct: [Double] = []
        for _ in 0..<runs {
            ours.append(try copy(from: try bridge.uri()))
            direct.append(try copy(from: "ssh-ng://builder1"))
        }
        print("serve (b): nix copy through nix-bridge \(ours.map(Bench.format)), from builder1 \(direct.map(Bench.format)); load \(Self.loadAverage)")
        let o = Bench.median(ours), n = Bench.median(direct)
        return [BenchRow(job: "nix copy --from, \(count)-path closure", ours: Bench.format(o) + " (through nix-bridge)",
                         nix: Bench.format(n) + " (from the builder)", ratio: String(format: "%.2fx the time", o / n),
                         target: "≤1.2x the time", met: o / n <= 1.2)]
    }

    // MARK: Shared

    /// The chroot store at `dest` holds `count` valid paths (asked of real Nix).
    static func checkValid(_ dest: URL, count: Int) throws {
        let out = try PeerFixtures.nix(["path-info", "--all", "--store", "local?root=\(dest.path)"])
        let n = out.text.split(separator: "\n").count
        guard n == count else { throw BenchFailure("destination holds \(n) valid paths, expected \(count)") }
    }

    static var loadAverage: String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// An executable next to this one.
    static func sibling(_ name: String) throws -> String {
        let exe = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        let path = exe.deletingLastPathComponent().appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw BenchFailure("\(path) is not built: swift build -c release --product \(name), or pass --nix-bridge")
        }
        return path
    }
}

/// nix-bridge as real Nix reaches it: a `remote-program` wrapper giving it its own nix.conf
/// (the fleet's builders and keys) and a fresh narinfo cache each time `uri()` is called.
final class ServeBridge {
    let bench: BenchFleet
    let binary: String
    private var n = 0

    init(bench: BenchFleet, binary: String) {
        self.bench = bench
        self.binary = binary
    }

    /// `ssh-ng://localhost?remote-program=<new wrapper>`.
    func uri() throws -> String {
        n += 1
        let dir = bench.work.appendingPathComponent("bridge-\(n)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let machines = bench.fleet.builders.map { "ssh-ng://\($0.name) x86_64-linux" }.joined(separator: " ; ")
        try Data("builders = \(machines)\ntrusted-public-keys = \(bench.trustedKeys)\n".utf8)
            .write(to: dir.appendingPathComponent("nix.conf"))
        let script = dir.appendingPathComponent("nix-bridge")
        try Data("""
            #!/bin/sh
            unset NIX_CONFIG
            export NIX_CONF_DIR='\(dir.path)' NIX_USER_CONF_FILES='\(dir.path)/nix.conf' XDG_CACHE_HOME='\(dir.path)/cache'
            export NIX_SSHOPTS='-F \(bench.fleet.sshConfig)'
            exec '\(binary)' "$@"

            """.utf8).write(to: script)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        return "ssh-ng://localhost?remote-program=\(script.path)"
    }
}
