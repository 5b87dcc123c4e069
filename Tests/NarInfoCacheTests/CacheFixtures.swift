import Foundation
import Synchronization
import NixCore
import TestSupport
@testable import NarInfoCache

/// A clock the tests move by hand.
final class TestClock: Sendable {
    private let seconds: Atomic<Int64>
    init(_ start: Int64 = 1_800_000_000) { seconds = Atomic(start) }
    var now: Int64 { seconds.load(ordering: .relaxed) }
    func advance(_ delta: Int64) { seconds.add(delta, ordering: .relaxed) }
    var function: @Sendable () -> Int64 { { self.now } }
}

enum Fixtures {
    static let storeURI = "https://cache.example.org"
    static let otherURI = "ssh-ng://builder1"
    static let info = NarInfoCache.CacheInfo(storeDir: "/nix/store", wantMassQuery: true, priority: 40)

    /// A fresh file path in a new temporary directory.
    static func cachePath() throws -> String {
        try TestSupport.temporaryDirectory("nb-narinfo-cache").appendingPathComponent("cache.sqlite").path
    }

    /// Removes the temporary directory of a `cachePath()`.
    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }

    /// Opens a cache on `path` with `clock`, registering `storeURI`.
    static func open(_ path: String, clock: TestClock, positiveTTL: Int64 = NarInfoCache.defaultPositiveTTL,
                     negativeTTL: Int64 = NarInfoCache.defaultNegativeTTL,
                     stores: [String] = [storeURI]) throws -> NarInfoCache {
        let cache = try NarInfoCache(path: path, positiveTTL: positiveTTL, negativeTTL: negativeTTL,
                                     now: clock.function)
        for uri in stores { try cache.createCache(storeURI: uri, info: info) }
        return cache
    }

    /// A hash part as Nix prints them: 20 bytes in Nix32 (distinct bytes for each `n`).
    static func hashPart(_ n: Int) -> String {
        Nix32.encode(pseudoRandomBytes(seed: UInt64(n), count: 20))
    }

    /// Deterministic bytes (splitmix64), so tests can name many distinct paths.
    static func pseudoRandomBytes(seed: UInt64, count: Int) -> [UInt8] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        var bytes: [UInt8] = []
        while bytes.count < count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            withUnsafeBytes(of: z) { bytes.append(contentsOf: $0) }
        }
        return Array(bytes.prefix(count))
    }

    /// A narinfo text shaped like Nix's (the cache stores it whole).
    static func narInfo(hashPart: String, name: String = "hello-2.12", narSize: Int = 4096) -> String {
        let narHash = Nix32.encode(pseudoRandomBytes(seed: UInt64(truncatingIfNeeded: hashPart.hashValue), count: 32))
        return """
            StorePath: /nix/store/\(hashPart)-\(name)
            URL: nar/\(narHash).nar.xz
            Compression: xz
            FileHash: sha256:\(narHash)
            FileSize: \(narSize / 3)
            NarHash: sha256:\(narHash)
            NarSize: \(narSize)
            References: \(hashPart)-\(name)
            Sig: cache.example.org-1:\(String(repeating: "A", count: 86))==

            """
    }
}
