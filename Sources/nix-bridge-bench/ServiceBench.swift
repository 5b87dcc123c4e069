import ArgumentParser
import Foundation
import NixCore
import PeerFixtures

/// `nix-bridge-bench service`: Nix 2.26 (from the Debian 13 root, `NIX_BRIDGE_TRIXIE_ROOT`),
/// which reconnects to an ssh-ng store after every path (NixOS/nix#6950), running
/// `nix copy --from 'ssh-ng://localhost?remote-program=RELAY'` while `nix-bridge serve --socket`
/// runs (RELAY is `nix-bridge --stdio` with `bridge-socket` naming it), against the same copy
/// straight from the builder's nix-daemon (`ssh-ng://builder1`); and the builders' SSH logins
/// during the timed runs (the service's first connections are made in a warm-up copy).
/// Destinations are fresh chroot stores; every copy is checked complete.
///
///     swift build -c release --product nix-bridge --product nix-bridge-bench
///     NIX_BRIDGE_TRIXIE_ROOT=.build/trixie-root .build/release/nix-bridge-bench service
struct ServiceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Nix 2.26 nix copy through the nix-bridge service vs straight from the builder."
    )

    @Option(help: "Closure sizes copied from builder1.") var sizes: [Int] = [21, 500]
    @Option(help: "Runs of each copy (the median is reported).") var runs = 3
    @Option(help: "The nix-bridge executable (default: next to this one).") var nixBridge: String?

    func run() throws {
        let me = self
        try Bench.block { try await me.measure() }
    }

    func measure() async throws {
        guard let root = NixVersions.nix226Root else {
            throw BenchFailure(NixVersions.nix226Unavailable ?? "no Nix 2.26 root")
        }
        let binary = try nixBridge ?? ServeBench.sibling("nix-bridge")
        let bench = try BenchFleet(builders: 3)
        defer { bench.stop() }
        var roots: [Int: String] = [:]
        for (i, size) in sizes.enumerated() {
            let fixture = try StoreFixture.closure(size: size, rootName: "service-\(size)-root", seed: UInt64(7000 + i))
            try bench.fill(builder: 1, with: fixture)
            roots[size] = StoreDirectory.default.print(try fixture.roots.first.orThrow("closure has no root"))
        }
        let service = try ServiceUnderTest(bench: bench, binary: binary)
        defer { service.stop() }
        let binds = [bench.fleet.directory.path, bench.work.path, "/opt/swift",
                     URL(fileURLWithPath: binary).resolvingSymlinksInPath().deletingLastPathComponent().path]
        let env = ["NIX_SSHOPTS": "-F \(bench.fleet.sshConfig)", "HOME": bench.work.appendingPathComponent("home226").path,
                   "NIX_CONFIG": "experimental-features = nix-command\nsubstituters =\n"]
        var n = 0
        func copy(_ uri: String, _ path: String, count: Int) throws -> Double {
            n += 1
            let dest = bench.work.appendingPathComponent("dest-\(n)").path
            defer { try? FileManager.default.removeItem(atPath: dest) }
            let start = ContinuousClock.now
            let out = try NixVersions.run(in: root, binds: binds, ["nix", "copy", "--from", uri, "--to", "local?root=\(dest)",
                                                                  "--no-check-sigs", path], environment: env, check: false)
            let t = Bench.seconds(ContinuousClock.now - start)
            guard out.status == 0 else { throw BenchFailure("nix copy --from \(uri) exited \(out.status): \(out.stderr.suffix(2000))") }
            let listed = try NixVersions.run(in: root, binds: binds, ["nix", "path-info", "--all", "--store", "local?root=\(dest)"],
                                             environment: env)
            let got = listed.text.split(separator: "\n").count
            guard got == count else { throw BenchFailure("destination holds \(got) paths, expected \(count)") }
            return t
        }
        let relay = service.relayURI
        var rows: [BenchRow] = []
        for size in sizes {
            let path = roots[size]!
            let before = bench.sshLogins()
            let warm = try copy(relay, path, count: size)
            let warmLogins = bench.sshLogins() - before
            var ours: [Double] = [], direct: [Double] = []
            var oursLogins = 0, directLogins = 0
            for _ in 0..<runs {
                var l = bench.sshLogins()
                ours.append(try copy(relay, path, count: size))
                oursLogins += bench.sshLogins() - l
                l = bench.sshLogins()
                direct.append(try copy("ssh-ng://builder1", path, count: size))
                directLogins += bench.sshLogins() - l
            }
            print("service: \(size) paths: warm-up \(Bench.format(warm)) (\(warmLogins) logins); through the service "
                  + "\(ours.map(Bench.format)) (\(oursLogins) logins), from builder1 \(direct.map(Bench.format)) "
                  + "(\(directLogins) logins); load \(ServeBench.loadAverage)")
            let o = Bench.median(ours), d = Bench.median(direct)
            rows.append(BenchRow(job: "Nix 2.26 nix copy --from, \(size)-path closure",
                                 ours: "\(Bench.format(o)), \(oursLogins) builder logins in \(runs) runs",
                                 nix: "\(Bench.format(d)) from builder1's nix-daemon, \(directLogins) logins",
                                 ratio: String(format: "%.2fx the time", o / d), target: "≤1.0x, no login after first use",
                                 met: o / d <= 1.0 && oursLogins == 0))
        }
        print("statistics of the service: \(service.statistics)")
        Bench.printTable(rows)
    }
}

/// `nix-bridge serve --socket` over the bench fleet (its builders and keys in a nix.conf of its
/// own), and a `remote-program` that relays to it.
final class ServiceUnderTest {
    let process: SpawnedProcess
    let relayURI: String
    let statsFile: String

    init(bench: BenchFleet, binary: String) throws {
        let dir = bench.work.appendingPathComponent("service")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let socket = dir.appendingPathComponent("socket").path
        let machines = bench.fleet.builders.map { "ssh-ng://\($0.name) x86_64-linux" }.joined(separator: " ; ")
        try Data("builders = \(machines)\ntrusted-public-keys = \(bench.trustedKeys)\n".utf8)
            .write(to: dir.appendingPathComponent("nix.conf"))
        let relayConf = bench.work.appendingPathComponent("relay-conf")
        try FileManager.default.createDirectory(at: relayConf, withIntermediateDirectories: true)
        try Data("builders =\nbridge-socket = \(socket)\n".utf8).write(to: relayConf.appendingPathComponent("nix.conf"))
        let script = bench.work.appendingPathComponent("relay")
        try Data("""
            #!/bin/sh
            unset NIX_CONFIG
            export NIX_CONF_DIR='\(relayConf.path)' NIX_USER_CONF_FILES='\(relayConf.path)/nix.conf'
            exec '\(binary)' "$@"

            """.utf8).write(to: script)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        relayURI = "ssh-ng://localhost?remote-program=\(script.path)"
        statsFile = dir.appendingPathComponent("stats").path
        let log = dir.appendingPathComponent("log").path
        process = try SpawnedProcess([binary, "serve", "--socket", socket], logFile: log, environment: [
            "NIX_CONF_DIR": dir.path, "NIX_USER_CONF_FILES": dir.appendingPathComponent("nix.conf").path,
            "XDG_CACHE_HOME": dir.appendingPathComponent("cache").path, "NIX_SSHOPTS": "-F \(bench.fleet.sshConfig)",
            "NIX_BRIDGE_STATS": statsFile,
        ])
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, process.isRunning {
            if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("unix://") { return }
            usleep(50_000)
        }
        process.stop()
        throw BenchFailure("nix-bridge serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    var statistics: String { ((try? String(contentsOfFile: statsFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }

    func stop() { process.stop() }
}
