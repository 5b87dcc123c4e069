import ArgumentParser
import Foundation
import NixCore
import NixSigning
import NixTransport
import PeerFixtures
import Bridge

/// Both SSH transports in one run, beside real Nix: a cold lookup of `--paths` paths spread
/// over 3 builders, and one `--nar-mib` MiB path substituted from builder 1. Targets: the
/// openssh transport within 1.2x of libssh2 on lookup; which one is faster for bulk NARs.
/// The openssh runs after the first go through the ControlMasters the first started.
struct TransportBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transport",
        abstract: "libssh2 against the user's OpenSSH client: lookup and a large substitution.")

    @Option(help: "Paths in all (each of the 3 builders holds a third).") var paths = 10_000
    @Option(help: "MiB of the large path (0: skip).") var narMib = 200
    @Option(help: "Runs of each measurement (the median is reported).") var runs = 3

    func run() throws {
        let me = self
        try Bench.block { try await me.measure() }
    }

    func measure() async throws {
        let bench = try BenchFleet(builders: 3)
        defer { bench.stop() }
        // The openssh transport reads ssh_config through NIX_SSHOPTS, as real Nix does.
        setenv("NIX_SSHOPTS", "-F \(bench.fleet.sshConfig)", 1)
        bench.opener.nixSSHOpts = "-F \(bench.fleet.sshConfig)"
        bench.opener.sshConfigIsOpenSSHs = true
        let per = paths / 3
        var held: [[StorePath]] = []
        var store1: FixtureStore?
        for i in 1...3 {
            let fixture = try StoreFixture.make(count: i == 3 ? paths - 2 * per : per, seed: UInt64(300 + i), namePrefix: "tr\(i)")
            let store = try bench.fill(builder: i, with: fixture)
            if i == 1 { store1 = store }
            held.append(fixture.paths)
        }
        let large = narMib > 0 ? try StoreFixture.large(mebibytes: narMib, name: "transport-\(narMib)m", seed: 9) : nil
        if let large { try store1?.add(large) }
        let all = held.flatMap { $0 }
        let trusted = try TrustedKeys(parsing: bench.trustedKeys)
        let lookup = LookupBench(), substitute = SubstituteBench()
        print("transport: \(all.count) paths over 3 builders\(large.map { _ in ", one \(narMib) MiB path on builder1" } ?? ""); load average \(LookupBench.loadAverage())")

        var lookupTimes: [SSHTransport: Double] = [:], narTimes: [SSHTransport: Double] = [:]
        for transport in [SSHTransport.libssh2, .openssh, .auto] {
            bench.opener.sshTransport = transport
            var cold: [Double] = [], nar: [Double] = []
            for run in 0..<runs {
                let cache = bench.work.path + "/narinfo-\(transport)-\(run).sqlite"
                cold.append(try await lookup.timeLookup(bench, all, trusted: trusted, cachePath: cache))
                if let large { nar.append(try await substitute.timeOurs(bench, large.roots[0], from: ["builder1"], expect: 1)) }
            }
            for i in 1...3 { await bench.opener.openSSHClient(try StoreURI(parsing: "ssh-ng://builder\(i)")).stopMaster() }
            lookupTimes[transport] = Bench.median(cold)
            if !nar.isEmpty { narTimes[transport] = Bench.median(nar) }
            print("transport: \(transport) lookup \(cold.map(Bench.format)), large path \(nar.map(Bench.format))")
        }
        var nixLookup: [Double] = []
        for _ in 0..<runs {
            var total = 0.0
            for (i, list) in held.enumerated() { total += try lookup.nixPathInfo(bench, builder: "builder\(i + 1)", list) }
            nixLookup.append(total)
        }
        let nixNar = try large.map { l in try (0..<runs).map { _ in try substitute.timeNixCopy(bench, l.roots[0], count: 1) } }

        let l2 = lookupTimes[.libssh2]!, os = lookupTimes[.openssh]!, nixL = Bench.median(nixLookup)
        var rows = [
            BenchRow(job: "lookup \(all.count) paths, 3 builders: openssh vs libssh2", ours: Bench.format(os), nix: Bench.format(l2),
                     ratio: String(format: "%.2fx", os / l2), target: "<= 1.2x", met: os / l2 <= 1.2),
            BenchRow(job: "lookup: libssh2 vs nix path-info per builder", ours: Bench.format(l2), nix: Bench.format(nixL),
                     ratio: String(format: "%.2fx", l2 / nixL), target: "-", met: nil),
            BenchRow(job: "lookup: openssh vs nix path-info per builder", ours: Bench.format(os), nix: Bench.format(nixL),
                     ratio: String(format: "%.2fx", os / nixL), target: "-", met: nil),
        ]
        if let nixNar, let n2 = narTimes[.libssh2], let no = narTimes[.openssh] {
            let mib = Double(narMib), nixT = Bench.median(nixNar)
            for (name, t) in [("libssh2", n2), ("openssh", no)] {
                rows.append(BenchRow(job: "\(narMib) MiB path, \(name) vs nix copy --from", ours: String(format: "%.0f MiB/s", mib / t),
                                     nix: String(format: "%.0f MiB/s", mib / nixT), ratio: String(format: "%.2fx", t / nixT),
                                     target: "-", met: nil))
            }
            bench.opener.sshTransport = .auto
            let faster: SSHTransport = no < n2 ? .openssh : .libssh2
            let auto = try bench.opener.narSSHClient(try StoreURI(parsing: "ssh-ng://builder1"))
            if let na = narTimes[.auto] {
                rows.append(BenchRow(job: "\(narMib) MiB path, auto (NARs over \(auto.client)) vs nix copy --from",
                                     ours: String(format: "%.0f MiB/s", mib / na), nix: String(format: "%.0f MiB/s", mib / nixT),
                                     ratio: String(format: "%.2fx", na / nixT), target: "-", met: nil))
            }
            rows.append(BenchRow(job: "auto's transport for NARs is the faster one (\(faster))", ours: "\(auto.client)", nix: "-",
                                 ratio: "-", target: "\(faster)", met: auto.client == faster))
            print("transport: faster for bulk NARs: \(faster); auto sends NARs over \(auto.client) (\(auto.reason))")
        }
        Bench.printTable(rows)
    }
}
