import ArgumentParser
import Bridge
import Foundation
import NixCore
import NixSigning
import NixStore
import NixTransport
import PeerFixtures

/// `nix-bridge-bench substitute`: our `Substituter` beside real Nix on a 3-builder loopback
/// fleet, every destination a fresh chroot store (`local?root=DIR` in /dev/shm):
///  (a) a closure held only by the 3rd builder, Nix using the 3 builders as `--substituters`;
///  (b) a large closure from one builder vs `nix copy --from`, and `nix-store --import` as floor;
///  (c) one large path vs `nix copy --from`, MiB/s, with our peak RSS (measured in a child).
///
///     swift build -c release --product nix-bridge-bench
///     .build/release/nix-bridge-bench substitute
struct SubstituteBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "substitute",
        abstract: "Substitution from a 3-builder fleet vs real Nix (--substituters, nix copy, nix-store --import)."
    )

    @Option(help: "Size of the closure held only by the 3rd builder.") var smallClosure = 51
    @Option(help: "Size of the closure fetched from one builder.") var bigClosure = 1_000
    @Option(name: .customLong("large-mib"), help: "MiB of the single large path (0: skip).") var largeMiB = 200
    @Option(help: "Runs of our measurements and of the fast Nix ones (the median is reported).") var runs = 3
    @Option(help: "Seconds real Nix may take to substitute through the substituter list.") var nixTimeout = 120
    @Flag(help: "Skip real Nix substituting through the 3 substituters (≈46 s).") var skipNixSubstituters = false

    func run() throws {
        let me = self
        try Bench.block { try await me.measure() }
    }

    func measure() async throws {
        let bench = try BenchFleet(builders: 3)
        defer { bench.stop() }
        let setup = ContinuousClock.now
        let small = try StoreFixture.closure(size: smallClosure, rootName: "third-only-root", seed: 51)
        try bench.fill(builder: 3, with: small)
        let big = try StoreFixture.closure(size: bigClosure, rootName: "big-root", seed: 1000)
        var store1 = try bench.fill(builder: 1, with: big)
        let large = largeMiB > 0 ? try StoreFixture.large(mebibytes: largeMiB, name: "large-\(largeMiB)m", seed: 7) : nil
        if let large { try store1.add(large) }
        print("substitute: fleet filled in \(Bench.format(Bench.seconds(ContinuousClock.now - setup)))")
        var rows: [BenchRow] = []
        rows += try await thirdBuilderRows(bench, small)
        rows += try await bigClosureRows(bench, big)
        if let large { rows += try await largeRows(bench, large) }
        Bench.printTable(rows)
    }

    // MARK: (a) closure on the 3rd builder only

    func thirdBuilderRows(_ bench: BenchFleet, _ fixture: StoreFixture) async throws -> [BenchRow] {
        let root = try fixture.roots.first.orThrow("closure has no root")
        let hosts = bench.fleet.builders.map(\.name)
        var ours: [Double] = []
        var logins = 0
        for _ in 0..<runs {
            let before = bench.sshLogins()
            ours.append(try await timeOurs(bench, root, from: hosts, expect: fixture.items.count))
            logins = bench.sshLogins() - before
        }
        print("substitute (a): ours \(ours.map(Bench.format)), \(logins) SSH logins")
        let o = Bench.median(ours)
        var row = BenchRow(job: "\(fixture.items.count)-path closure on the 3rd of 3 builders", ours: Bench.format(o) + " (\(logins) logins)",
                           nix: "skipped", ratio: "-", target: "< 0.5 s, ≥90x", met: nil)
        guard !skipNixSubstituters else { return [row] }
        let dest = try FixtureStore.scratchDirectory("nb-bench-dest")
        defer { try? FileManager.default.removeItem(at: dest) }
        let before = bench.sshLogins()
        let subs = hosts.map { "ssh-ng://\($0)" }.joined(separator: " ")
        do {
            let (t, _) = try bench.timeNix(["nix-store", "-r", StoreDirectory.default.print(root), "--store", "local?root=\(dest.path)",
                                            "--option", "substituters", subs, "--option", "trusted-public-keys", bench.trustedKeys],
                                           timeout: nixTimeout)
            let nixLogins = bench.sshLogins() - before
            try checkValid(dest, count: fixture.items.count)
            print("substitute (a): nix-store -r with 3 substituters \(Bench.format(t)), \(nixLogins) SSH logins")
            row.nix = Bench.format(t) + " (\(nixLogins) logins)"
            row.ratio = String(format: "%.0fx", t / o)
            row.met = o < 0.5 && t / o >= 90
        } catch {
            print("substitute (a): real Nix: \(error)")
            row.nix = "> \(nixTimeout) s (timed out)"
            row.ratio = String(format: "> %.0fx", Double(nixTimeout) / o)
            row.met = o < 0.5 && Double(nixTimeout) / o >= 90
        }
        return [row]
    }

    // MARK: (b) a big closure from one builder

    func bigClosureRows(_ bench: BenchFleet, _ fixture: StoreFixture) async throws -> [BenchRow] {
        let root = try fixture.roots.first.orThrow("closure has no root")
        var ours: [Double] = [], copy: [Double] = [], floor: [Double] = []
        for _ in 0..<runs {
            ours.append(try await timeOurs(bench, root, from: ["builder1"], expect: fixture.items.count))
            copy.append(try timeNixCopy(bench, root, count: fixture.items.count))
            let dest = try FixtureStore.scratchDirectory("nb-bench-dest")
            defer { try? FileManager.default.removeItem(at: dest) }
            floor.append(try await Bench.time {
                try ProcessPipe.run(["nix-store", "--store", "local?root=\(dest.path)", "--import"]) { write in
                    try fixture.writeExport(to: write)
                }
            })
        }
        print("substitute (b): ours \(ours.map(Bench.format)), nix copy \(copy.map(Bench.format)), nix-store --import \(floor.map(Bench.format))")
        let o = Bench.median(ours), n = Bench.median(copy), f = Bench.median(floor)
        let count = fixture.items.count
        return [
            BenchRow(job: "\(count)-path closure from one builder", ours: Bench.format(o), nix: Bench.format(n) + " (nix copy)",
                     ratio: String(format: "%.2fx the time", o / n), target: "≤0.75x the time", met: o / n <= 0.75),
            BenchRow(job: "floor: nix-store --import of the same \(count) paths", ours: Bench.format(o), nix: Bench.format(f) + " (import)",
                     ratio: String(format: "%.2fx the time", o / f), target: "report", met: nil),
        ]
    }

    // MARK: (c) one large path

    func largeRows(_ bench: BenchFleet, _ fixture: StoreFixture) async throws -> [BenchRow] {
        let path = try fixture.paths.first.orThrow("no large path")
        let mib = Double(largeMiB)
        var ours: [Double] = [], copy: [Double] = [], rss: [UInt64] = [], daemonRSS: [UInt64] = []
        var cat: [Double] = [], catTransfer: [Double] = []
        // The same NAR bytes, dumped on builder1's side, for a raw libssh2 `cat` (our transport
        // alone: its ceiling).
        let printed = StoreDirectory.default.print(path)
        let narFile = bench.work.appendingPathComponent("large.nar").path
        try PeerFixtures.run(["sh", "-c", "nix-store --dump '\(bench.fleet.builders[0].storeRoot)\(printed)' > '\(narFile)'"])
        defer { try? FileManager.default.removeItem(atPath: narFile) }
        let narSize = Int((try FileManager.default.attributesOfItem(atPath: narFile)[.size] as? UInt64) ?? 0)
        let target = bench.opener.sshConfig.resolve(host: "builder1").target()
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        for _ in 0..<runs {
            let dest = try FixtureStore.scratchDirectory("nb-bench-dest")
            defer { try? FileManager.default.removeItem(at: dest) }
            // In a child, so that its peak RSS is the substitution's alone.
            let out = try PeerFixtures.run([exe, "substitute-one", "--ssh-config", bench.fleet.sshConfig,
                                           "--source", "ssh-ng://builder1", "--destination", "local?root=\(dest.path)",
                                           "--trusted-public-keys", bench.keys[0].publicKey,
                                           StoreDirectory.default.print(path)])
            let fields = Dictionary(uniqueKeysWithValues: out.trimmed.split(separator: " ").compactMap { kv -> (String, String)? in
                let p = kv.split(separator: "=", maxSplits: 1)
                return p.count == 2 ? (String(p[0]), String(p[1])) : nil
            })
            guard let s = fields["seconds"].flatMap(Double.init), let r = fields["vmhwm"].flatMap(UInt64.init) else {
                throw BenchFailure("substitute-one printed: \(out.text)")
            }
            try checkValid(dest, count: 1)
            ours.append(s)
            rss.append(r)
            daemonRSS.append(fields["children-maxrss"].flatMap(UInt64.init) ?? 0)
            copy.append(try timeNixCopy(bench, path, count: 1))
            let start = ContinuousClock.now
            catTransfer.append(try await StoreBenchEnvironment.rawCat(target: target, command: "cat '\(narFile)'", expected: narSize))
            cat.append(Bench.seconds(ContinuousClock.now - start))
        }
        print("substitute (c): ours \(ours.map(Bench.format)), peak RSS \(rss.map { $0 >> 20 }) MiB (local nix-daemon \(daemonRSS.map { $0 >> 20 }) MiB); nix copy \(copy.map(Bench.format)); libssh2 cat \(cat.map(Bench.format)) with connect, \(catTransfer.map(Bench.format)) transfer only")
        let o = Bench.median(ours), n = Bench.median(copy), c = Bench.median(cat)
        let peak = rss.max() ?? 0
        return [
            BenchRow(job: "one \(largeMiB) MiB path from one builder", ours: String(format: "%.0f MiB/s", mib / o),
                     nix: String(format: "%.0f MiB/s (nix copy)", mib / n), ratio: String(format: "%.2fx", n / o), target: "≥1.5x", met: n / o >= 1.5),
            BenchRow(job: "same vs raw libssh2 `cat` of the NAR (connect included)", ours: String(format: "%.0f MiB/s", mib / o),
                     nix: String(format: "%.0f MiB/s (cat; %.0f transfer only)", mib / c, mib / Bench.median(catTransfer)),
                     ratio: String(format: "%.0f%%", c / o * 100), target: "≥90%", met: c / o >= 0.9),
            BenchRow(job: "peak RSS, \(largeMiB) MiB path", ours: "\(peak >> 20) MiB", nix: "-", ratio: "-",
                     target: "< 64 MiB (for 2 GiB)", met: largeMiB >= 2048 ? peak < 64 << 20 : nil),
        ]
    }

    // MARK: Shared

    /// Our substitution of `root` from `hosts` into a fresh chroot store; checks the count.
    func timeOurs(_ bench: BenchFleet, _ root: StorePath, from hosts: [String], expect: Int) async throws -> Double {
        let dest = try FixtureStore.scratchDirectory("nb-bench-dest")
        defer { try? FileManager.default.removeItem(at: dest) }
        let sources = try hosts.map { try bench.opener.store(try StoreURI(parsing: "ssh-ng://\($0)")) }
        let destination = try bench.opener.store(try StoreURI(parsing: "local?root=\(dest.path)"))
        let substituter = Substituter(lookup: Lookup(stores: sources, trustedKeys: try TrustedKeys(parsing: bench.trustedKeys)),
                                      destination: destination)
        var fetched: [StorePath] = []
        let start = ContinuousClock.now
        let planned = PlanClock()
        let t = try await Bench.time {
            fetched = try await substituter.substitute([root]) { event in
                if case .planned = event { planned.mark(ContinuousClock.now - start) }
            }
        }
        if let p = planned.elapsed { print("  (\(fetched.count) paths: planned in \(Bench.format(Bench.seconds(p))), fetched in \(Bench.format(t - Bench.seconds(p))))") }
        for s in sources + [destination] { await s.close() }
        guard fetched.count == expect else { throw BenchFailure("substituted \(fetched.count) of \(expect) paths") }
        try checkValid(dest, count: expect)
        return t
    }

    /// `nix copy --from ssh-ng://builder1 PATH --to local?root=<fresh>` (signatures not checked).
    func timeNixCopy(_ bench: BenchFleet, _ path: StorePath, count: Int) throws -> Double {
        let dest = try FixtureStore.scratchDirectory("nb-bench-dest")
        defer { try? FileManager.default.removeItem(at: dest) }
        let (t, _) = try bench.timeNix(["nix", "copy", "--from", "ssh-ng://builder1", StoreDirectory.default.print(path),
                                        "--to", "local?root=\(dest.path)", "--no-check-sigs"])
        try checkValid(dest, count: count)
        return t
    }

    /// The chroot store at `dest` holds `count` valid paths (asked of real Nix).
    func checkValid(_ dest: URL, count: Int) throws {
        let out = try PeerFixtures.nix(["path-info", "--all", "--store", "local?root=\(dest.path)"])
        let n = out.text.split(separator: "\n").count
        guard n == count else { throw BenchFailure("destination holds \(n) valid paths, expected \(count)") }
    }
}

/// `nix-bridge-bench substitute-one`: one substitution in its own process, printing
/// `seconds=S vmhwm=BYTES children-maxrss=BYTES` (run by `substitute` for its peak RSS).
struct SubstituteOne: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "substitute-one", abstract: "One substitution in its own process (used by `substitute`).",
        shouldDisplay: false)

    @Option var sshConfig: String
    @Option var source: String
    @Option var destination: String
    @Option var trustedPublicKeys: String
    @Argument var paths: [String]

    func run() throws {
        let me = self
        try Bench.block { try await me.substitute() }
    }

    func substitute() async throws {
        var opener = StoreOpener()
        opener.sshConfig = try SSHConfig.load(path: sshConfig)
        let src = try opener.store(try StoreURI(parsing: source))
        let dest = try opener.store(try StoreURI(parsing: destination))
        let substituter = Substituter(lookup: Lookup(stores: [src], trustedKeys: try TrustedKeys(parsing: trustedPublicKeys)),
                                      destination: dest)
        let wanted = try paths.map { try StoreDirectory.default.parse($0) }
        let t = try await Bench.time { _ = try await substituter.substitute(wanted) }
        await src.close()
        await dest.close()
        print("seconds=\(t) vmhwm=\(ProcessPipe.peakResidentBytes() ?? 0) children-maxrss=\(ProcessPipe.childrenPeakResidentBytes())")
    }
}

/// When the substituter finished planning (its `.planned` event).
final class PlanClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Duration?
    func mark(_ d: Duration) { lock.withLock { value = d } }
    var elapsed: Duration? { lock.withLock { value } }
}

extension Optional {
    func orThrow(_ message: String) throws -> Wrapped {
        guard let self else { throw BenchFailure(message) }
        return self
    }
}
