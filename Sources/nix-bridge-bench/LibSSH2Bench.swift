import ArgumentParser
import Foundation
import NixCore
import PeerFixtures

/// `nix-bridge-bench libssh2 --libssh2-dir DIR`: the SSH transport with the system's libssh2
/// and with the one in DIR (e.g. Debian 13's 1.11.1, which loads on Debian 12), in one run
/// against the same sshd: `ssh-cat` throughput and the substitution of one large path, each
/// in a child process started with and without `LD_LIBRARY_PATH=DIR`; real `nix copy` of the
/// same path beside them.
///
///     swift build -c release --product nix-bridge-bench
///     .build/release/nix-bridge-bench libssh2 --libssh2-dir .build/libssh2-1.11
struct LibSSH2Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "libssh2",
        abstract: "ssh-cat and one large substitution with the system's libssh2 and another one, same run."
    )

    @Option(help: "Folder holding the other libssh2.so.1.") var libssh2Dir: String
    @Option(name: .customLong("large-mib"), help: "MiB of the large path and of each cat run.") var largeMiB = 200
    @Option(help: "Runs per measurement (the median is reported).") var runs = 3

    func run() throws {
        let me = self
        try Bench.block { try await me.measure() }
    }

    func measure() async throws {
        let bench = try BenchFleet(builders: 1)
        defer { bench.stop() }
        let fixture = try StoreFixture.large(mebibytes: largeMiB, name: "large-\(largeMiB)m", seed: 7)
        try bench.fill(builder: 1, with: fixture)
        let path = StoreDirectory.default.print(try fixture.paths.first.orThrow("no large path"))
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let dir = URL(fileURLWithPath: libssh2Dir).standardized.path
        var rows: [BenchRow] = []
        var nixCopy: [Double] = []
        for (label, env) in [("system", [String: String]()), (dir, ["LD_LIBRARY_PATH": dir])] {
            let cat = try PeerFixtures.run([exe, "ssh-cat", "--ssh-config", bench.fleet.sshConfig, "--host", "builder1",
                                           "--mebibytes", "\(largeMiB)", "--runs", "\(runs)", "--connects", "3",
                                           "--skip-open-ssh"], environment: env)
            print(cat.text, terminator: "")
            var subst: [Double] = []
            for _ in 0..<runs {
                let dest = try FixtureStore.scratchDirectory("nb-bench-dest")
                defer { try? FileManager.default.removeItem(at: dest) }
                let out = try PeerFixtures.run([exe, "substitute-one", "--ssh-config", bench.fleet.sshConfig,
                                               "--source", "ssh-ng://builder1", "--destination", "local?root=\(dest.path)",
                                               "--trusted-public-keys", bench.keys[0].publicKey, path], environment: env)
                let seconds = out.trimmed.split(separator: " ").first { $0.hasPrefix("seconds=") }
                    .flatMap { Double($0.dropFirst("seconds=".count)) }
                subst.append(try seconds.orThrow("substitute-one printed: \(out.text)"))
                let copyDest = try FixtureStore.scratchDirectory("nb-bench-dest")
                defer { try? FileManager.default.removeItem(at: copyDest) }
                let (t, _) = try bench.timeNix(["nix", "copy", "--from", "ssh-ng://builder1", path,
                                                "--to", "local?root=\(copyDest.path)", "--no-check-sigs"])
                nixCopy.append(t)
            }
            let version = cat.text.split(separator: "\n").first { $0.hasPrefix("libssh2 ") }.map(String.init) ?? label
            let catLine = cat.text.split(separator: "\n").first { $0.hasPrefix("cat ") }.map(String.init) ?? "?"
            let mib = Double(largeMiB)
            rows.append(BenchRow(job: "\(version): \(catLine.replacingOccurrences(of: "SSHChannelStream ", with: ""))",
                                 ours: String(format: "substitute %.0f MiB/s", mib / Bench.median(subst)),
                                 nix: String(format: "nix copy %.0f MiB/s", mib / Bench.median(nixCopy)),
                                 ratio: String(format: "%.2fx", Bench.median(nixCopy) / Bench.median(subst)),
                                 target: "report", met: nil))
        }
        Bench.printTable(rows)
    }
}
