import ArgumentParser
import Foundation
import NixCore
import NixStore

/// NAR dump + SHA-256 throughput of `NARDumper` against `nix-store --dump | sha256sum` on
/// the same tree in the same run, then raw SHA-256 of the three implementations one could
/// pick (libcrypto EVP, libsodium, pure Swift). Docs/Hashing.md records the results.
struct NARBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nar-hash",
        abstract: "narHash throughput: NARDumper+SHA-256 vs `nix-store --dump | sha256sum`, and raw SHA-256 speeds."
    )

    @Option(help: "Tree to hash (default: generate one in a temporary directory).")
    var path: String?
    @Option(name: .customLong("size-mib"), help: "Size of the generated tree, in MiB.")
    var sizeMiB = 200
    @Option(help: "Runs of each measurement; the best one counts.")
    var runs = 3
    @Option(name: .customLong("sha256-mib"), help: "MiB hashed per run in the raw SHA-256 comparison (0 skips it).")
    var sha256MiB = 256
    @Flag(help: "Keep the generated tree.")
    var keep = false

    func run() throws {
        var generated: URL?
        let tree: String
        if let path {
            tree = path
        } else {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nar-bench-\(getpid())")
            generated = dir
            let (files, bytes) = try BenchTree.generate(at: dir.appendingPathComponent("tree"), sizeMiB: sizeMiB)
            tree = dir.appendingPathComponent("tree").path
            print("generated \(tree): \(files) files, \(mib(bytes)) MiB of contents")
        }
        defer { if let generated, !keep { try? FileManager.default.removeItem(at: generated) } }

        let (oursTime, ours) = try bestOf(runs) { try NARDumper().narHash(path: tree) }
        let command = "nix-store --dump '\(tree)' | sha256sum"
        let (nixTime, nixOut) = try bestOf(runs) { try shell(command) }
        let nixHex = String(nixOut.prefix(64))
        let agree = nixHex == ours.narHash.string(.base16, withAlgorithm: false)
        let size = Double(ours.narSize)
        print("narSize \(ours.narSize) bytes (\(mib(ours.narSize)) MiB), narHash \(ours.narHash) (nix agrees: \(agree))")
        print("best of \(runs):")
        print(row("NARDumper + SHA-256 (libcrypto)", size, oursTime))
        print(row(command.replacingOccurrences(of: tree, with: "TREE"), size, nixTime))
        print(String(format: "ratio ours/nix: %.2fx", nixTime / oursTime))
        guard agree else { throw ValidationError("narHash differs from nix-store's: \(nixHex)") }

        // For context: nix's own in-process narHash, and its dump alone.
        let hashPath = "nix --extra-experimental-features nix-command hash path '\(tree)'"
        let (hashPathTime, sri) = try bestOf(runs) { try shell(hashPath) }
        let (dumpTime, _) = try bestOf(runs) { try shell("nix-store --dump '\(tree)' > /dev/null") }
        print(row("nix hash path TREE (nix agrees: \(sri.hasPrefix(ours.narHash.string(.sri))))", size, hashPathTime))
        print(row("nix-store --dump TREE > /dev/null", size, dumpTime))

        // Receiving side (NarFromPath, substituters): validate + hash a NAR held in memory.
        let nar = try shellData("nix-store --dump '\(tree)'")
        let (readTime, readHash) = try bestOf(runs) { () -> Hash in
            var reader = NARReader()
            let sink = NARHashSink()
            try nar.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
                for start in stride(from: 0, to: buf.count, by: 1 << 16) {
                    let chunk = UnsafeRawBufferPointer(rebasing: buf[start..<min(start + (1 << 16), buf.count)])
                    try reader.feed(chunk) { _ in }
                    sink.update(chunk)
                }
            }
            try reader.finish()
            return sink.finalize().narHash
        }
        print(row("NARReader + SHA-256 of that NAR in memory (agrees: \(readHash == ours.narHash))", size, readTime))

        if sha256MiB > 0 { try compareSHA256() }
    }

    /// Raw SHA-256 speed over an in-memory buffer fed in 1 MiB updates.
    private func compareSHA256() throws {
        let chunk = 1 << 20
        var data = [UInt8](repeating: 0, count: 64 << 20)
        var x: UInt64 = 0x9e3779b97f4a7c15
        for i in 0..<data.count { x ^= x << 13; x ^= x >> 7; x ^= x << 17; data[i] = UInt8(truncatingIfNeeded: x) }
        let total = Double(sha256MiB) * 1_048_576
        func feed(_ update: (UnsafeRawBufferPointer) -> Void) {
            data.withUnsafeBytes { buf in
                var left = sha256MiB << 20
                var i = 0
                while left > 0 {
                    if i == buf.count { i = 0 }
                    update(UnsafeRawBufferPointer(rebasing: buf[i..<(i + chunk)]))
                    i += chunk
                    left -= chunk
                }
            }
        }
        let (tCrypto, dCrypto) = bestOf(runs) { () -> [UInt8] in
            let h = HashSink(.sha256)
            feed { h.update($0) }
            return h.finalize().bytes
        }
        let (tSodium, dSodium) = bestOf(runs) { () -> [UInt8] in SodiumSHA256.sha256(feed) }
        let (tSwift, dSwift) = bestOf(runs) { () -> [UInt8] in
            var h = SHA256Naive()
            feed { h.update($0) }
            return h.finalize()
        }
        print("raw SHA-256 of \(sha256MiB) MiB in 1 MiB updates, best of \(runs) (digests agree: \(dCrypto == dSodium && dSodium == dSwift)):")
        print(row("libcrypto EVP (NixCore HashSink)", total, tCrypto))
        print(row("libsodium crypto_hash_sha256", total, tSodium))
        print(row("pure Swift (naive)", total, tSwift))
    }

    private func row(_ label: String, _ bytes: Double, _ seconds: Double) -> String {
        label.padding(toLength: 62, withPad: " ", startingAt: 0)
            + String(format: "%8.3f s %9.1f MiB/s", seconds, bytes / 1_048_576 / seconds)
    }

    private func mib(_ bytes: UInt64) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }

    private func bestOf<T>(_ n: Int, _ body: () throws -> T) rethrows -> (Double, T) {
        var best = Double.infinity
        var result: T?
        for _ in 0..<max(n, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            result = try body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return (best, result!)
    }

    private func shell(_ command: String) throws -> String {
        String(decoding: try shellData(command), as: UTF8.self)
    }

    private func shellData(_ command: String) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("`\(command)` exited \(p.terminationStatus)") }
        return data
    }
}

/// A synthetic store-path-like tree: many small files (the per-file overhead case) in nested
/// directories, a few large ones (the streaming case), some executables and symlinks.
enum BenchTree {
    static func generate(at root: URL, sizeMiB: Int) throws -> (files: Int, bytes: UInt64) {
        let fm = FileManager.default
        var pool = [UInt8](repeating: 0, count: 16 << 20)
        var x: UInt64 = 0x2545f4914f6cdd1d
        for i in 0..<pool.count { x ^= x << 13; x ^= x >> 7; x ^= x << 17; pool[i] = UInt8(truncatingIfNeeded: x) }
        let target = UInt64(sizeMiB) << 20
        let smallBudget = target * 45 / 100
        var written: UInt64 = 0
        var files = 0
        func write(_ url: URL, _ size: Int, executable: Bool = false) throws {
            let start = Int(x % UInt64(pool.count - size + 1))
            try Data(pool[start..<(start + size)]).write(to: url)
            if executable { try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path) }
            written += UInt64(size)
            files += 1
        }
        var dirIndex = 0
        while written < smallBudget {
            let dir = root.appendingPathComponent("share/d\(dirIndex / 20)/d\(dirIndex)")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            for f in 0..<200 where written < smallBudget {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                try write(dir.appendingPathComponent("file-\(f).txt"), 256 + Int(x % 16_128), executable: f % 50 == 0)
            }
            try fm.createSymbolicLink(atPath: dir.appendingPathComponent("link").path, withDestinationPath: "file-0.txt")
            dirIndex += 1
        }
        let lib = root.appendingPathComponent("lib")
        try fm.createDirectory(at: lib, withIntermediateDirectories: true)
        var n = 0
        while written < target {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            try write(lib.appendingPathComponent("big-\(n).so"), Int(min(target - written, 16 << 20)), executable: true)
            n += 1
        }
        return (files, written)
    }
}
