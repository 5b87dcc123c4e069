import ArgumentParser
import Foundation
import NarInfoCache
import NixCore

/// Throughput of the narinfo cache: batch and single inserts, point lookups, and the warm
/// lookup of 10,000 paths that a closure query does.
struct CacheBench: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "cache",
                             abstract: "NarInfoCache: inserts/s, point lookups/s, warm lookup of 10,000 paths.")
    }

    @Option(help: "Paths to insert and look up.")
    var count = 100_000

    @Option(help: "Paths per insert transaction.")
    var batchSize = 10_000

    @Option(help: "Single (one transaction each) inserts to time.")
    var singleInserts = 10_000

    @Option(help: "Database file (default: a fresh file in a temporary directory, removed after).")
    var path: String?

    func validate() throws {
        guard count > 0, batchSize > 0, singleInserts >= 0 else {
            throw ValidationError("--count and --batch-size must be positive, --single-inserts not negative")
        }
    }

    func run() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nb-cache-bench-\(UUID().uuidString.prefix(8))")
        let file = path ?? dir.appendingPathComponent("narinfo-cache.sqlite").path
        defer { if path == nil { try? FileManager.default.removeItem(at: dir) } }
        let storeURI = "https://cache.example.org"
        let cache = try NarInfoCache(path: file)
        try cache.createCache(storeURI: storeURI, info: .init(storeDir: "/nix/store", wantMassQuery: true, priority: 40))

        let hashes = (0..<count).map { Self.hashPart($0) }
        let entries = hashes.map { (hashPart: $0, narInfoText: Self.narInfo(hashPart: $0)) }
        let meanSize = entries.reduce(0) { $0 + $1.narInfoText.utf8.count } / max(1, count)
        print("cache: \(count) paths, narinfo text \(meanSize) bytes on average, file \(file)")

        var start = ContinuousClock.now
        for chunk in stride(from: 0, to: count, by: batchSize) {
            try cache.insert(storeURI: storeURI, entries: entries[chunk..<min(count, chunk + batchSize)])
        }
        report("batch insert (\(batchSize) per transaction)", count, "inserts", since: start)

        let singles = (0..<singleInserts).map { Self.hashPart(count + $0) }
        start = .now
        for hash in singles { try cache.insertMissing(storeURI: storeURI, hashPart: hash) }
        report("single negative insert (own transaction)", singleInserts, "inserts", since: start)

        // Point lookups in a scattered order, all hits.
        var order = Array(0..<count)
        var rng = SystemRandomNumberGenerator()
        order.shuffle(using: &rng)
        var hits = 0
        start = .now
        for i in order {
            if case .hit = try cache.lookup(storeURI: storeURI, hashPart: hashes[i]) { hits += 1 }
        }
        report("point lookup (\(hits) hits)", count, "lookups", since: start)

        // A closure's worth of paths at once, warm (the pages are cached): best and median of 5.
        let closure = Array(order.prefix(10_000).map { hashes[$0] })
        var times: [Duration] = []
        for _ in 0..<5 {
            let t = ContinuousClock.now
            let outcomes = try cache.lookup(storeURI: storeURI, hashParts: closure)
            times.append(ContinuousClock.now - t)
            guard outcomes.count == closure.count else { throw ValidationError("lookup returned \(outcomes.count)") }
        }
        times.sort()
        print("cache: warm lookup of \(closure.count) paths: best \(Self.ms(times[0])) ms, median \(Self.ms(times[2])) ms")

        let stats = try cache.stats()
        print("cache: file \(stats.fileSize / 1024) KiB (with WAL) for \(stats.stores.map { $0.positive + $0.negative }.reduce(0, +)) answers")
    }

    private func report(_ what: String, _ n: Int, _ unit: String, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("cache: \(what): \(n) in \(Self.ms(elapsed)) ms = \(Int(Double(n) / seconds)) \(unit)/s")
    }

    private static func ms(_ d: Duration) -> String {
        String(format: "%.1f", Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15)
    }

    /// Distinct 20-byte hash parts in Nix32, as store paths have.
    static func hashPart(_ n: Int) -> String {
        var x = UInt64(n) &* 0x9E37_79B9_7F4A_7C15 &+ 0xD1B5_4A32_D192_ED03
        var bytes: [UInt8] = []
        while bytes.count < 20 {
            x ^= x >> 31
            x = x &* 0xBF58_476D_1CE4_E5B9
            withUnsafeBytes(of: x) { bytes.append(contentsOf: $0) }
        }
        return Nix32.encode(bytes.prefix(20))
    }

    /// A narinfo text of typical size (a few references and one signature).
    static func narInfo(hashPart: String) -> String {
        let narHash = Nix32.encode(Array((hashPart + hashPart).utf8.prefix(32)))
        let refs = (0..<4).map { "\(Self.hashPart(hashPart.utf8.count &* 31 &+ $0))-dep-\($0)" }.joined(separator: " ")
        return """
            StorePath: /nix/store/\(hashPart)-package-1.0
            URL: nar/\(narHash).nar.xz
            Compression: xz
            FileHash: sha256:\(narHash)
            FileSize: 41234
            NarHash: sha256:\(narHash)
            NarSize: 123456
            References: \(refs)
            Deriver: \(hashPart)-package-1.0.drv
            Sig: cache.example.org-1:\(String(repeating: "A", count: 86))==

            """
    }
}
