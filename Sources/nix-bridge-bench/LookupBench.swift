import ArgumentParser
import Bridge
import Foundation
import NarInfoCache
import NixCore
import NixSigning
import NixStore
import NixTransport
import PeerFixtures

/// `nix-bridge-bench lookup`: where are N paths across a 3-builder loopback fleet (each
/// builder holds a third, signed with its own key)? Our `Lookup` (all builders at once,
/// pipelined, SQLite narinfo cache) cold and warm, beside `nix path-info --store
/// ssh-ng://builderN` on each builder in turn; then the same through a 10 ms RTT proxy.
///
///     swift build -c release --product nix-bridge-bench
///     .build/release/nix-bridge-bench lookup
struct LookupBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup",
        abstract: "Lookup of N paths over 3 builders, cold and warm, vs nix path-info on each builder in turn."
    )

    @Option(help: "Paths in all (each of the 3 builders holds a third).") var paths = 10_000
    @Option(help: "Runs of each measurement (the median is reported).") var runs = 3
    @Option(help: "Round-trip time added by the latency proxy, in ms (0: skip that part).") var rttMs = 10
    @Option(help: "Paths Nix is asked for through the proxy (it asks one path per round trip).") var rttNixPaths = 600
    @Option(help: "Extra warm lookups at the end (for profiling the warm path).") var warmRepeat = 0

    /// The process CPU time of the last `timeLookup`.
    nonisolated(unsafe) static var lastCPUStore = 0.0
    var lastCPU: Double {
        get { Self.lastCPUStore }
        nonmutating set { Self.lastCPUStore = newValue }
    }

    func run() throws {
        let me = self
        try Bench.block { try await me.measure() }
    }

    func measure() async throws {
        let bench = try BenchFleet(builders: 3)
        defer { bench.stop() }
        let per = paths / 3
        var held: [[StorePath]] = []
        let setup = ContinuousClock.now
        for i in 1...3 {
            let fixture = try StoreFixture.make(count: i == 3 ? paths - 2 * per : per, seed: UInt64(100 + i), namePrefix: "lk\(i)")
            try bench.fill(builder: i, with: fixture)
            held.append(fixture.paths)
        }
        let all = held.flatMap { $0 }
        print("lookup: \(all.count) paths, a third signed on each of 3 builders (setup \(Bench.format(Bench.seconds(ContinuousClock.now - setup))))")
        let trusted = try TrustedKeys(parsing: bench.trustedKeys)
        var rows: [BenchRow] = []

        // Ours, cold: a fresh cache file and fresh connections each run; warm: the same cache again.
        var cold: [Double] = [], warm: [Double] = [], coldCPU: [Double] = [], warmCPU: [Double] = []
        for run in 0..<runs {
            let cachePath = bench.work.path + "/narinfo-\(run).sqlite"
            cold.append(try await timeLookup(bench, all, trusted: trusted, cachePath: cachePath))
            coldCPU.append(lastCPU)
            warm.append(try await timeLookup(bench, all, trusted: trusted, cachePath: cachePath))
            warmCPU.append(lastCPU)
        }
        print("lookup: ours cold \(cold.map(Bench.format)) (CPU of our process \(coldCPU.map(Bench.format))), warm \(warm.map(Bench.format)) (CPU \(warmCPU.map(Bench.format))); load average \(Self.loadAverage())")
        try warmBreakdown(bench.work.path + "/narinfo-0.sqlite", all, trusted: trusted)
        if warmRepeat > 0 {
            var extra: [Double] = [], extraCPU: [Double] = []
            for _ in 0..<warmRepeat {
                extra.append(try await timeLookup(bench, all, trusted: trusted, cachePath: bench.work.path + "/narinfo-0.sqlite"))
                extraCPU.append(lastCPU)
            }
            print("lookup: \(warmRepeat) more warm lookups, median \(Bench.format(Bench.median(extra))), best \(Bench.format(extra.min()!)); CPU median \(Bench.format(Bench.median(extraCPU))); load average \(Self.loadAverage())")
        }

        // Nix: path-info on each builder in turn. It fails on the first path a store lacks, so it
        // is given only the paths each builder holds: a lower bound for real Nix.
        var nix: [Double] = []
        for _ in 0..<runs {
            var total = 0.0
            for (i, mine) in held.enumerated() {
                total += try nixPathInfo(bench, builder: "builder\(i + 1)", mine)
            }
            nix.append(total)
        }
        print("lookup: nix path-info \(nix.map(Bench.format)); load average \(Self.loadAverage())")
        let c = Bench.median(cold), w = Bench.median(warm), n = Bench.median(nix)
        rows.append(BenchRow(job: "lookup \(all.count) paths, 3 builders, loopback, cold", ours: Bench.format(c), nix: Bench.format(n),
                             ratio: String(format: "%.1fx", n / c), target: "≥5x", met: n / c >= 5))
        rows.append(BenchRow(job: "same, warm (SQLite cache)", ours: Bench.format(w), nix: "-",
                             ratio: String(format: "%.0fx", n / w), target: "< 50 ms", met: w < 0.050))

        if rttMs > 0 { rows += try await latencyRows(bench, held: held, trusted: trusted) }
        Bench.printTable(rows)
    }

    /// Where a warm lookup's time goes: the SQLite reads (with the recorded verdicts), narinfo
    /// parsing; and what verifying every signature again would cost (what the verdicts save).
    func warmBreakdown(_ cachePath: String, _ paths: [StorePath], trusted: TrustedKeys) throws {
        let cache = try NarInfoCache(path: cachePath)
        let key = Lookup(stores: [], trustedKeys: trusted, cache: cache).verdictKey
        var texts: [String] = []
        var withVerdict = 0
        var records: [[UInt8]] = []
        let hashParts = paths.map(\.hashPart)
        let sql = try Self.cpu {
            for host in ["builder1", "builder2", "builder3"] {
                for case let .hit(hit) in try cache.answers(storeURI: "ssh-ng://\(host)", hashParts: hashParts, verdictKey: key) {
                    if hit.verdict != nil { withVerdict += 1 }
                    if let record = hit.record { records.append(record) }
                }
            }
        }
        // The texts (not read above: the records and verdicts make them unneeded).
        for host in ["builder1", "builder2", "builder3"] {
            for case let .hit(hit) in try cache.answers(storeURI: "ssh-ng://\(host)", hashParts: hashParts, verdictKey: "") {
                if let text = hit.narInfoText { texts.append(text) }
            }
        }
        var infos: [PathInfo] = []
        let parse = try Self.cpu {
            infos = try texts.map { try NarInfo(parsing: $0, whence: "bench", storeDir: .default).pathInfo }
        }
        var decoded = 0
        let decode = Self.cpu {
            decoded = records.count { Lookup.decodeRecord($0) != nil }
        }
        // What the cold lookup writes: the same answers into a fresh file, one transaction a store.
        let fresh = try NarInfoCache(path: cachePath + "-rewrite")
        let written = try Self.cpu {
            let verdict = NarInfoCache.Verdict(key: key, value: "signed builder1-1")
            for (k, host) in ["builder1", "builder2", "builder3"].enumerated() {
                let uri = "ssh-ng://\(host)"
                try fresh.createCache(storeURI: uri, info: .init(storeDir: "/nix/store", wantMassQuery: true, priority: 0))
                let mine = Array(texts.indices).filter { $0 % 3 == k }
                try fresh.record(storeURI: uri, entries: mine.map {
                    .init(hashPart: hashParts[$0], narInfoText: texts[$0], verdict: verdict, record: records[$0])
                }, missing: hashParts.indices.filter { $0 % 3 != k }.map { hashParts[$0] })
            }
        }
        var trustedCount = 0
        let verify = Self.cpu {
            trustedCount = infos.filter { trusted.verify($0).isTrusted }.count
        }
        print("lookup: warm breakdown (CPU time, one thread): SQLite reads \(Bench.format(sql)) (3 × \(paths.count) hash parts, \(withVerdict) verdicts), records decoded \(Bench.format(decode)) (\(decoded); narinfo parsing would be \(Bench.format(parse))); writing them to a fresh file \(Bench.format(written)); verifying them all again would be \(Bench.format(verify)) (\(trustedCount) trusted)")
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// CPU seconds used so far by the whole process (all threads): under load, wall time
    /// moves with the other jobs on the machine, CPU time much less.
    static func processCPU() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// CPU seconds used so far by the calling thread.
    static func threadCPU() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// CPU time of `body` on this thread (it must not suspend).
    static func cpu(_ body: () throws -> Void) rethrows -> Double {
        let start = threadCPU()
        try body()
        return threadCPU() - start
    }

    /// One `Lookup` of `paths` with fresh store connections and the cache at `cachePath`;
    /// checks every path was found, trusted, on exactly one builder.
    func timeLookup(_ bench: BenchFleet, _ paths: [StorePath], trusted: TrustedKeys, cachePath: String,
                    hosts: [String] = ["builder1", "builder2", "builder3"]) async throws -> Double {
        let stores = try hosts.map { try bench.opener.store(try StoreURI(parsing: "ssh-ng://\($0)")) }
        let cache = try NarInfoCache(path: cachePath)
        let lookup = Lookup(stores: stores, trustedKeys: trusted, cache: cache)
        var result: Lookup.Result?
        let cpuStart = Self.processCPU()
        let t = await Bench.time { result = await lookup.lookup(paths) }
        lastCPU = Self.processCPU() - cpuStart
        for s in stores { await s.close() }
        guard let result, result.failures.isEmpty else {
            throw BenchFailure("lookup failed: \(result?.failures.map { "\($0.store): \($0.error)" } ?? [])")
        }
        let good = result.answers.filter { $0.locations.count == 1 && $0.best != nil }.count
        guard good == paths.count else { throw BenchFailure("lookup: \(good) of \(paths.count) paths found once and trusted") }
        return t
    }

    /// `nix path-info --store ssh-ng://HOST` of `paths`, in batches that fit a command line.
    func nixPathInfo(_ bench: BenchFleet, builder: String, _ paths: [StorePath], sshConfig: String? = nil) throws -> Double {
        var total = 0.0
        let printed = paths.map { StoreDirectory.default.print($0) }
        for start in stride(from: 0, to: printed.count, by: 4_000) {
            let batch = Array(printed[start..<min(start + 4_000, printed.count)])
            let (t, out) = try bench.timeNix(["nix", "path-info", "--store", "ssh-ng://\(builder)"] + batch, sshConfig: sshConfig)
            let lines = out.text.split(separator: "\n").count
            guard lines == batch.count else { throw BenchFailure("nix path-info printed \(lines) of \(batch.count) paths") }
            total += t
        }
        return total
    }

    /// The same through a proxy adding `rttMs` to every round trip: ours for every path, Nix
    /// for `rttNixPaths` (a third on each builder) and extrapolated linearly to every path.
    func latencyRows(_ bench: BenchFleet, held: [[StorePath]], trusted: TrustedKeys) async throws -> [BenchRow] {
        let proxies = try bench.fleet.builders.map {
            try LatencyProxy(targetPort: $0.port, delay: .microseconds(rttMs * 500))
        }
        defer { for p in proxies { p.stop() } }
        // A copy of the ssh_config with `builderN-rtt` hosts going through the proxies.
        var config = try String(contentsOfFile: bench.fleet.sshConfig, encoding: .utf8)
        for (b, p) in zip(bench.fleet.builders, proxies) {
            config = """
                Host \(b.name)-rtt
                  HostName 127.0.0.1
                  Port \(p.port)
                  HostKeyAlias \(b.name)
                  User root
                  IdentityFile \(bench.fleet.clientKey)
                  IdentitiesOnly yes
                  UserKnownHostsFile \(bench.fleet.knownHosts)
                  StrictHostKeyChecking yes
                  BatchMode yes
                  ControlMaster no
                  LogLevel ERROR

                """ + config
        }
        let configPath = bench.work.path + "/ssh_config_rtt"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let saved = bench.opener
        bench.opener.sshConfig = try SSHConfig.load(path: configPath)
        defer { bench.opener = saved }
        let hosts = bench.fleet.builders.map { $0.name + "-rtt" }
        let all = held.flatMap { $0 }

        let oursAll = try await timeLookup(bench, all, trusted: trusted, cachePath: bench.work.path + "/narinfo-rtt.sqlite", hosts: hosts)
        let perBuilder = rttNixPaths / 3
        let some = held.flatMap { $0.prefix(perBuilder) }
        let oursSome = try await timeLookup(bench, some, trusted: trusted, cachePath: bench.work.path + "/narinfo-rtt2.sqlite", hosts: hosts)
        var nixSome = 0.0, nixFew = 0.0
        for (i, mine) in held.enumerated() {
            nixSome += try nixPathInfo(bench, builder: hosts[i], Array(mine.prefix(perBuilder)), sshConfig: configPath)
            nixFew += try nixPathInfo(bench, builder: hosts[i], Array(mine.prefix(1)), sshConfig: configPath)
        }
        // Nix's time = 3 connections + one round trip per path: extrapolate from the two sizes.
        let perPath = (nixSome - nixFew) / Double(some.count - 3)
        let nixAll = nixFew + perPath * Double(all.count - 3)
        print(String(format: "lookup at %d ms RTT: ours %@ (%d paths), %@ (%d); nix %@ (%d), %@ (3), %.2f ms a path",
                     rttMs, Bench.format(oursAll), all.count, Bench.format(oursSome), some.count,
                     Bench.format(nixSome), some.count, Bench.format(nixFew), perPath * 1000))
        return [
            BenchRow(job: "lookup \(some.count) paths, \(rttMs) ms RTT, cold", ours: Bench.format(oursSome), nix: Bench.format(nixSome),
                     ratio: String(format: "%.1fx", nixSome / oursSome), target: "-", met: nil),
            BenchRow(job: "lookup \(all.count) paths, \(rttMs) ms RTT, cold (Nix extrapolated)", ours: Bench.format(oursAll),
                     nix: "≈" + Bench.format(nixAll), ratio: String(format: "%.0fx", nixAll / oursAll), target: "≥50x", met: nixAll / oursAll >= 50),
        ]
    }
}
