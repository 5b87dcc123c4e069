import ArgumentParser
import Dispatch
import Foundation
import NixCore
import NixStore
import NixTransport
import NixWire
import PeerFixtures

/// The measurements of `nix-bridge-bench store`, each repeated and checked (every answer is
/// compared with what the fixture wrote, so a fast wrong answer cannot pass).
struct StoreBenchEnvironment: Sendable {
    /// An ssh_config with `builder1` and (unless skipped) `builder1slow` behind the proxy.
    var sshConfigPath: String
    var sshConfig: SSHConfig
    /// What the fixture imported, by path.
    var infos: [StorePath: PathInfo]
    /// RAM-backed scratch directory for `nix copy` destinations.
    var scratch: URL

    var nixEnvironment: [String: String] { ["NIX_SSHOPTS": "-F \(sshConfigPath)"] }

    // MARK: QueryPathInfo

    /// A fresh RemoteStore per run; the time includes connect, SSH and worker handshakes, as a
    /// CLI user sees it.
    func ourQuery(host: String, paths: [StorePath], maxConnections: Int, runs: Int) throws -> Stats {
        let opener = StoreOpener(sshConfig: sshConfig, maxConnections: maxConnections)
        let uri = try StoreURI(parsing: "ssh-ng://\(host)")
        let expected = infos
        var samples: [Double] = []
        for _ in 0..<runs {
            let (t, wrong) = try blocking { () async throws -> (Double, Int) in
                let start = ContinuousClock.now
                let store = try opener.store(uri)
                let result = try await store.queryPathInfos(paths)
                let t = seconds(ContinuousClock.now - start)
                await store.close()
                let wrong = paths.filter { p in
                    guard let got = result[p] ?? nil, let want = expected[p] else { return true }
                    return got.narHash != want.narHash || got.narSize != want.narSize || got.sigs.isEmpty
                }.count
                return (t, wrong)
            }
            guard wrong == 0 else { throw ValidationError("QueryPathInfo: \(wrong) of \(paths.count) answers wrong or unsigned") }
            samples.append(t)
        }
        return Stats(samples: samples)
    }

    /// `nix path-info --store ssh-ng://HOST PATHS...` (10,000 paths ≈ 600 KB of arguments,
    /// well under ARG_MAX = 2 MiB here).
    func nixPathInfo(host: String, paths: [StorePath], runs: Int) throws -> Stats {
        let printed = paths.map { StoreDirectory.default.print($0) }
        let argBytes = printed.reduce(0) { $0 + $1.utf8.count + 1 }
        guard argBytes < 1_500_000 else { throw ValidationError("\(argBytes) bytes of arguments is too close to ARG_MAX") }
        let command = ["nix", "--extra-experimental-features", "nix-command", "path-info", "--store", "ssh-ng://\(host)"] + printed
        var samples: [Double] = []
        for _ in 0..<runs {
            let start = ContinuousClock.now
            let out = try PeerFixtures.run(command, environment: nixEnvironment)
            samples.append(seconds(ContinuousClock.now - start))
            let lines = out.stdout.split(separator: UInt8(ascii: "\n")).count
            guard lines == paths.count else { throw ValidationError("nix path-info printed \(lines) of \(paths.count) paths") }
        }
        return Stats(samples: samples)
    }

    // MARK: NarFromPath

    func narBenchmarks(host: String, storeRoot: String, path: StorePath, fleetDirectory: URL, runs: Int,
                       into table: inout ResultTable) throws {
        guard let info = infos[path] else { throw ValidationError("no fixture info for \(path)") }
        let printed = StoreDirectory.default.print(path)
        let bytes = Double(info.narSize)
        let mib = Int(info.narSize >> 20)

        // The same NAR bytes, pre-dumped on the builder's side for a raw `cat`.
        let narFile = fleetDirectory.appendingPathComponent("large.nar").path
        try PeerFixtures.run(["sh", "-c", "nix-store --dump '\(storeRoot)\(printed)' > '\(narFile)'"])
        let sum = try PeerFixtures.run(["sha256sum", narFile])
        guard String(decoding: sum.stdout.prefix(64), as: UTF8.self) == info.narHash.string(.base16, withAlgorithm: false) else {
            throw ValidationError("the pre-dumped NAR does not match the path's narHash")
        }

        let target = sshConfig.resolve(host: host).target()
        let dumpCommand = "nix-store --dump '\(storeRoot)\(printed)'"
        let opener = StoreOpener(sshConfig: sshConfig)
        let uri = try StoreURI(parsing: "ssh-ng://\(host)")
        let size = Int(info.narSize)
        // Rounds interleave the five jobs so each sees the same background load.
        var cat: [Double] = [], dump: [Double] = [], bare: [Double] = [], transfer: [Double] = [], total: [Double] = [], copy: [Double] = []
        for i in 0..<runs {
            cat.append(try blocking { try await Self.rawCat(target: target, command: "cat '\(narFile)'", expected: size) })
            dump.append(try blocking { try await Self.rawCat(target: target, command: dumpCommand, expected: size) })
            bare.append(try blocking { try await Self.ourNAR(opener: opener, uri: uri, path: path, expected: info, hash: false) }.0)
            let (t, all) = try blocking { try await Self.ourNAR(opener: opener, uri: uri, path: path, expected: info, hash: true) }
            transfer.append(t)
            total.append(all)
            let dest = scratch.appendingPathComponent("copy-\(i)")
            let start = ContinuousClock.now
            try PeerFixtures.run(["nix", "--extra-experimental-features", "nix-command", "copy", "--from", "ssh-ng://\(host)",
                                 printed, "--to", "local?root=\(dest.path)", "--no-check-sigs"], environment: nixEnvironment)
            copy.append(seconds(ContinuousClock.now - start))
            guard FileManager.default.fileExists(atPath: dest.path + printed) else { throw ValidationError("nix copy did not write \(printed)") }
            try FileManager.default.removeItem(at: dest)
        }
        let catStats = Stats(samples: cat), dumpStats = Stats(samples: dump), transferStats = Stats(samples: transfer)
        let bareStats = Stats(samples: bare), totalStats = Stats(samples: total)
        let copyStats = Stats(samples: copy)
        print("  raw cat FILE.nar, \(mib) MiB over SSHChannelStream (transfer only): \(catStats)")
        print("  raw nix-store --dump PATH over SSHChannelStream (transfer only): \(dumpStats)")
        print("  ours NarFromPath, NAR parsed but not hashed, transfer only: \(bareStats)")
        print("  ours NarFromPath + SHA-256 verify, transfer only: \(transferStats)")
        print("  ours NarFromPath end to end (connect + handshakes + NAR + verify): \(totalStats)")
        print("  nix copy --from ssh-ng (to a /dev/shm chroot store): \(copyStats)")

        table.add("NarFromPath \(mib) MiB + verify, transfer only", ours: transferStats, nix: catStats,
                  unit: .mebibytesPerSecond(bytes: bytes), target: 0.9, baseline: "raw cat, same libssh2 transport")
        table.add("NarFromPath \(mib) MiB + verify, transfer only", ours: transferStats, nix: dumpStats,
                  unit: .mebibytesPerSecond(bytes: bytes), target: nil, baseline: "raw nix-store --dump, same transport")
        table.add("NarFromPath \(mib) MiB, not hashed, transfer only", ours: bareStats, nix: catStats,
                  unit: .mebibytesPerSecond(bytes: bytes), target: nil, baseline: "raw cat, same libssh2 transport")
        table.add("NarFromPath \(mib) MiB end to end (incl. connect)", ours: totalStats, nix: copyStats,
                  unit: .mebibytesPerSecond(bytes: bytes), target: 1.5, baseline: "nix copy --from ssh-ng (writes the store)")
    }

    /// Seconds to read `expected` bytes of `cat FILE` over one libssh2 exec channel, timed from
    /// a go-ahead byte (so connection set-up is excluded, as in the "transfer only" figure).
    static func rawCat(target: SSHTarget, command: String, expected: Int) async throws -> Double {
        let s = try await SSHChannelStream.connect(to: target, command: "read x; exec " + command)
        try await s.write(Array("go\n".utf8))
        let start = ContinuousClock.now
        var got = 0
        while true {
            let b = try await s.read(maxLength: 1 << 20)
            if b.isEmpty { break }
            got += b.count
        }
        let t = seconds(ContinuousClock.now - start)
        await s.close()
        guard got == expected else { throw ValidationError("cat returned \(got) of \(expected) bytes") }
        return t
    }

    /// (transfer only, end to end) seconds of NarFromPath into a SHA-256 NARHashSink, checked
    /// against the path's narHash and narSize.
    static func ourNAR(opener: StoreOpener, uri: StoreURI, path: StorePath, expected: PathInfo,
                       hash: Bool) async throws -> (Double, Double) {
        let start = ContinuousClock.now
        let store = try opener.store(uri)
        _ = try await store.handshake()
        let transferStart = ContinuousClock.now
        let box = HashBox()
        if hash {
            try await store.narFromPath(path) { chunk in chunk.withUnsafeBytes { box.sink.update($0) } }
        } else {
            try await store.narFromPath(path) { chunk in box.count += chunk.count }
        }
        let (narHash, narSize) = hash ? box.sink.finalize() : (expected.narHash, UInt64(box.count))
        let end = ContinuousClock.now
        await store.close()
        guard narHash == expected.narHash, narSize == expected.narSize else {
            throw ValidationError("NarFromPath: narHash \(narHash) size \(narSize), expected \(expected.narHash) size \(expected.narSize)")
        }
        return (seconds(end - transferStart), seconds(end - start))
    }
}

/// The hash sink is used by one NAR stream at a time (the connection's reader). Hashing inline
/// on the reader; a variant hashing on its own thread measured no different on 2 busy cores.
final class HashBox: @unchecked Sendable {
    let sink = NARHashSink()
    var count = 0
}

final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// Runs async work from the synchronous command, waiting for it (real-Nix runs stay off the
/// cooperative pool this way).
func blocking<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}
