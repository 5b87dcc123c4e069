import ArgumentParser
import CSodium
import Foundation
import NixCore
import NixSigning

/// Signature verifications per second through `TrustedKeys` beside raw libsodium
/// `crypto_sign_verify_detached` on the same fingerprints, one core and all cores.
struct SigningBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Signature verifications/s: TrustedKeys vs raw libsodium, on real fingerprints."
    )

    @Option(help: "Seconds per measurement.")
    var seconds: Double = 2
    @Option(help: "Most real store paths to take fingerprints from.")
    var paths: Int = 1000
    @Option(help: "Rounds (best of) per measurement.")
    var rounds: Int = 3
    @Option(help: "Threads for the all-cores measurement (default: active processors).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    /// One path's fingerprint and signature, pre-decoded for the raw loop.
    struct Item: Sendable {
        let info: PathInfo
        let fingerprint: String
        let signature: String
        let rawFingerprint: [UInt8]
        let rawSignature: [UInt8]
    }

    func run() throws {
        guard sodium_init() >= 0 else { throw ValidationError("libsodium failed to initialise") }
        let (infos, source) = realPathInfos()
        let key = try SecretKey.generate(name: "bench-1")
        let publicKey = key.publicKey
        let rawKey = try Base64.decode(publicKey.description.split(separator: ":")[1])
        let trusted = TrustedKeys([try SecretKey.generate(name: "bench-0").publicKey, publicKey])
        let items = try infos.map { info -> Item in
            var info = info
            info.ca = nil // so verify() really checks a signature
            let fp = try info.fingerprint()
            let sig = key.sign(fp).description
            info.sigs = [sig]
            return Item(info: info, fingerprint: fp, signature: sig, rawFingerprint: Array(fp.utf8),
                        rawSignature: try Base64.decode(sig.split(separator: ":")[1]))
        }
        print("fingerprints: \(items.count) from \(source); mean length \(items.map(\.fingerprint.utf8.count).reduce(0, +) / max(items.count, 1)) bytes")

        let raw: @Sendable (Item) -> Bool = { item in
            item.rawSignature.withUnsafeBufferPointer { s in
                item.rawFingerprint.withUnsafeBufferPointer { m in
                    rawKey.withUnsafeBufferPointer { k in
                        crypto_sign_verify_detached(s.baseAddress!, m.baseAddress, UInt64(m.count), k.baseAddress!) == 0
                    }
                }
            }
        }
        let check: @Sendable (Item) -> Bool = { item in
            if case .valid = trusted.check(signature: item.signature, fingerprint: item.fingerprint) { return true }
            return false
        }
        let verify: @Sendable (Item) -> Bool = { item in trusted.verify(item.info).isTrusted }

        // What verify() adds to check(): building the fingerprint (and the verdict).
        let fingerprintRate = measure(items, threads: 1) { item in (try? item.info.fingerprint())?.isEmpty == false }.perCPUSecond
        print(String(format: "PathInfo.fingerprint() alone: %.0f/s (%.2f µs each)", fingerprintRate, 1e6 / fingerprintRate))
        print("Rates per CPU-second use each thread's own CPU time (robust to other load on the machine);")
        print("wall-clock rates are what the threads achieved together in real time.")

        for threadCount in Set([1, threads]).sorted() {
            var best = [String: Rate]()
            for _ in 0..<rounds {
                // Interleaved, so drift in the machine's load hits every variant alike.
                for (name, f) in [("raw", raw), ("check", check), ("verify", verify)] {
                    let r = measure(items, threads: threadCount, f)
                    let old = best[name] ?? Rate(wall: 0, perCPUSecond: 0)
                    best[name] = Rate(wall: max(old.wall, r.wall), perCPUSecond: max(old.perCPUSecond, r.perCPUSecond))
                }
            }
            let label = threadCount == 1 ? "1 thread " : "\(threadCount) threads"
            let raw = best["raw"]!
            for (name, title) in [("raw", "raw crypto_sign_verify_detached     "),
                                  ("check", "TrustedKeys.check(signature:fingerprint:)"),
                                  ("verify", "TrustedKeys.verify(PathInfo)        ")] {
                let r = best[name]!
                print(String(format: "%@  %@  %7.0f/s per CPU-second (ratio %.3f)  %7.0f/s wall clock (ratio %.3f)",
                             label, title, r.perCPUSecond, r.perCPUSecond / raw.perCPUSecond, r.wall, r.wall / raw.wall))
            }
        }
    }

    struct Rate {
        /// Verifications per second of real time, all threads together.
        var wall: Double
        /// Verifications per second of CPU time, per thread (one core's speed).
        var perCPUSecond: Double
    }

    /// Runs `f` for `seconds` on `threads` threads, each cycling over the items from its own
    /// offset. Every result must be true.
    func measure(_ items: [Item], threads: Int, _ f: @escaping @Sendable (Item) -> Bool) -> Rate {
        let counts = UnsafeMutableBufferPointer<(Int, Double)>.allocate(capacity: threads)
        counts.initialize(repeating: (0, 0))
        defer { counts.deallocate() }
        nonisolated(unsafe) let shared = counts
        let deadline = seconds
        let start = Date()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var n = 0, i = t * items.count / max(threads, 1)
            let began = Date(), cpuStart = threadCPUTime()
            while true {
                for _ in 0..<64 {
                    precondition(f(items[i]), "a signature failed to verify")
                    i = i + 1 == items.count ? 0 : i + 1
                    n += 1
                }
                if Date().timeIntervalSince(began) >= deadline { break }
            }
            shared[t] = (n, threadCPUTime() - cpuStart)
        }
        let elapsed = Date().timeIntervalSince(start)
        let total = counts.reduce(0) { $0 + $1.0 }
        let cpu = counts.reduce(0.0) { $0 + $1.1 }
        return Rate(wall: Double(total) / elapsed, perCPUSecond: Double(total) / max(cpu, 1e-9))
    }

    /// CPU time this thread has used, in seconds.
    func threadCPUTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Path infos of the local store from `nix path-info --json --all`; synthetic ones
    /// (random hashes, realistic shapes) when nix is missing.
    func realPathInfos() -> ([PathInfo], String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["nix", "--extra-experimental-features", "nix-command", "path-info", "--json", "--all"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        var infos = [PathInfo]()
        if (try? p.run()) != nil {
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let list = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] ?? []
            let dir = StoreDirectory.default
            for entry in list.prefix(paths) {
                guard let path = (entry["path"] as? String).flatMap({ try? dir.parse($0) }),
                      let hash = (entry["narHash"] as? String).flatMap({ try? Hash(parsing: $0) }),
                      let size = (entry["narSize"] as? NSNumber)?.uint64Value, size > 0 else { continue }
                let refs = (entry["references"] as? [String] ?? []).compactMap { try? dir.parse($0) }
                infos.append(PathInfo(path: path, narHash: hash, references: Set(refs), narSize: size))
            }
        }
        if !infos.isEmpty { return (infos, "nix path-info --json --all") }
        for i in 0..<max(paths, 1) {
            let h = HashSink.hash(.sha256, string: "bench \(i)")
            let path = try! StorePath(digest: Array(h.bytes.prefix(20)), name: "bench-\(i)")
            infos.append(PathInfo(path: path, narHash: h, narSize: UInt64(1000 + i)))
        }
        return (infos, "synthetic paths (nix not found)")
    }
}
