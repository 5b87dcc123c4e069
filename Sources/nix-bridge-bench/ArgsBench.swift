import ArgumentParser
import Foundation
import Glibc
import NixCore
import PeerFixtures

/// `nix-bridge-bench args`: what a long path list costs before the first byte goes out.
/// `nix-bridge path-info --store bogus://x PATHS...` parses its command line (or reads
/// `--stdin`) and then fails to open the store; the same for the real `nix path-info`. The
/// argument handling that N paths add is the time with N paths minus the time with one: CPU
/// (user + system of the child, the kernel's copy of the arguments included) and wall time
/// from the child's start to its exit.
///
///     swift build -c release --product nix-bridge --product nix-bridge-bench
///     .build/release/nix-bridge-bench args
struct ArgsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "args",
        abstract: "Argument handling of 10,000 and 100,000 paths (positional and --stdin), beside nix path-info."
    )

    @Option(parsing: .upToNextOption, help: "Path counts.") var counts: [Int] = [10_000, 100_000]
    @Option(help: "Runs per measurement (the median is reported).") var runs = 5

    func run() throws {
        // 100,000 paths are ≈5.5 MB of arguments: Linux allows a quarter of the stack limit,
        // at most 6 MB, so the children get a stack limit that allows the most.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_STACK.rawValue), &limit)
        limit.rlim_cur = min(limit.rlim_max, 64 << 20)
        setrlimit(Int32(RLIMIT_STACK.rawValue), &limit)

        let ours = try BuildBench.siblingBinary()
        let nix = try PeerFixtures.which("nix").orThrow("nix is not on PATH")
        let work = try PeerFixtures.temporaryDirectory("nb-bench-args")
        defer { try? FileManager.default.removeItem(at: work) }
        let all = (0..<(counts.max() ?? 1)).map { i in
            StoreDirectory.default.path + "/" + CacheBench.hashPart(i) + "-a"
        }
        let base = ["path-info", "--store", "bogus://x"]
        let nixBase = [nix, "--extra-experimental-features", "nix-command"] + base
        let one = try measure([ours] + base + [all[0]])
        let nixOne = try measure(nixBase + [all[0]])
        var rows: [BenchRow] = []
        for n in counts {
            let paths = Array(all.prefix(n))
            let stdinFile = work.appendingPathComponent("paths-\(n)")
            try Data(paths.map { $0 + "\n" }.joined().utf8).write(to: stdinFile)
            let positional = try measure([ours] + base + paths)
            let stdin = try measure([ours] + base + ["--stdin"], stdin: stdinFile.path)
            let nixPositional = try measure(nixBase + paths)
            // Nix 2.8's `path-info` has no --stdin (2.26's reads installables from it).
            for (label, t, tNix) in [("positional", positional, Optional(nixPositional)), ("--stdin", stdin, nil)] {
                let added = t.wall - one.wall, addedNix = tNix.map { $0.wall - nixOne.wall }
                rows.append(BenchRow(
                    job: "\(n.formatted()) paths, \(label): added wall (CPU)",
                    ours: String(format: "%.0f ms (%.0f ms)", added * 1e3, (t.cpu - one.cpu) * 1e3),
                    nix: tNix.map { String(format: "%.0f ms (%.0f ms)", addedNix! * 1e3, ($0.cpu - nixOne.cpu) * 1e3) } ?? "no --stdin",
                    ratio: addedNix.map { String(format: "%.1fx", $0 / max(added, 1e-4)) } ?? "-",
                    target: n >= 100_000 ? "< 100 ms" : "report",
                    met: n >= 100_000 ? max(added, t.cpu - one.cpu) < 0.1 : nil))
            }
        }
        print(String(format: "one path: nix-bridge %.0f ms (CPU %.0f ms), nix %.0f ms (CPU %.0f ms); median of %d runs",
                     one.wall * 1e3, one.cpu * 1e3, nixOne.wall * 1e3, nixOne.cpu * 1e3, runs))
        Bench.printTable(rows)
    }

    /// Median wall time and CPU time (user + system, from the reaped child's rusage) of a
    /// command that must fail at opening `bogus://x`.
    private func measure(_ command: [String], stdin: String? = nil) throws -> (wall: Double, cpu: Double) {
        var walls: [Double] = [], cpus: [Double] = []
        for _ in 0..<runs {
            let before = Self.childrenCPU()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: command[0])
            p.arguments = Array(command.dropFirst())
            let err = Pipe()
            p.standardOutput = FileHandle.nullDevice
            p.standardError = err
            p.standardInput = try stdin.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
            // Timed from the child's start: Foundation's own work of handing 100,000
            // arguments to posix_spawn is the benchmark's, not the command's.
            try p.run()
            let start = ContinuousClock.now
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            walls.append(Bench.seconds(ContinuousClock.now - start))
            cpus.append(Self.childrenCPU() - before)
            guard text.contains("bogus://x") else {
                throw BenchFailure("\(command[0]) \(command.count - 1) arguments: expected the store error, got: \(text.prefix(500))")
            }
        }
        return (Bench.median(walls), Bench.median(cpus))
    }

    private static func childrenCPU() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }
}
