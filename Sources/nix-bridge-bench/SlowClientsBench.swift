import ArgumentParser
import Foundation
import NixCore
import PeerFixtures

/// `nix-bridge-bench serve-slow`: the memory of `nix-bridge serve --http` (the real
/// executable, over a 1-builder loopback fleet) while 10 clients read one 1 GiB path at
/// 1 MiB/s each (`curl --limit-rate`), for a bounded time: the process's peak RSS, the bytes
/// the clients got, and the bytes it read meanwhile (its `rchar`: the builder's SSH stream,
/// and the few bytes of the HTTP requests). Nix has no HTTP server to compare with; what
/// the clients got is the baseline of what had to be pulled.
///
///     swift build -c release --product nix-bridge --product nix-bridge-bench
///     .build/release/nix-bridge-bench serve-slow
struct SlowClientsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve-slow",
        abstract: "Peak RSS of serve --http and bytes pulled from the builder while 10 clients read a 1 GiB path at 1 MiB/s."
    )

    @Option(help: "Size of the path, MiB.") var mebibytes = 1024
    @Option(help: "Clients reading it at once.") var clients = 10
    @Option(help: "Each client's rate, bytes/s (curl --limit-rate).") var rate = 1 << 20
    @Option(help: "Seconds the clients read.") var seconds = 20
    @Option(help: "The nix-bridge executable (default: next to this one).") var nixBridge: String?

    func run() throws {
        let binary = try nixBridge ?? ServeBench.sibling("nix-bridge")
        let bench = try BenchFleet(builders: 1)
        defer { bench.stop() }
        let setup = ContinuousClock.now
        let fixture = try StoreFixture.large(mebibytes: mebibytes, name: "serve-slow", seed: 1201)
        try bench.fill(builder: 1, with: fixture)
        let path = try fixture.paths.first.orThrow("no path")
        print("serve-slow: one \(mebibytes) MiB path on builder1 (setup \(Bench.format(Bench.seconds(ContinuousClock.now - setup))))")

        let dir = bench.work.appendingPathComponent("serve-http")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("builders = ssh-ng://builder1 x86_64-linux\ntrusted-public-keys = \(bench.trustedKeys)\n".utf8)
            .write(to: dir.appendingPathComponent("nix.conf"))
        let log = dir.appendingPathComponent("serve.log").path
        var env: [String: String] = [:]
        env["NIX_CONF_DIR"] = dir.path
        env["NIX_USER_CONF_FILES"] = dir.appendingPathComponent("nix.conf").path
        env["XDG_CACHE_HOME"] = dir.appendingPathComponent("cache").path
        env["NIX_SSHOPTS"] = "-F \(bench.fleet.sshConfig)"
        env["NIX_CONFIG"] = ""
        let server = try SpawnedProcess([binary, "serve", "--http", "127.0.0.1:0"], logFile: log, environment: env)
        defer { server.stop() }
        let base = try Self.waitForURL(log, server)
        let narinfo = try PeerFixtures.run(["curl", "-sS", "-f", "\(base)/\(path.hashPart).narinfo"])
        guard let url = narinfo.text.split(separator: "\n").first(where: { $0.hasPrefix("URL: ") })?.dropFirst(5) else {
            throw BenchFailure("no URL in the narinfo: \(narinfo.text)")
        }
        let before = try Self.status(server.pid)
        let readBefore = try Self.readBytes(server.pid)

        // The clients, each with its output in a file; RSS sampled while they read.
        var running: [(Process, URL)] = []
        for i in 0..<clients {
            let out = dir.appendingPathComponent("client-\(i)")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["curl", "-sS", "--limit-rate", "\(rate)", "--max-time", "\(seconds)", "-o", "/dev/null",
                           "-w", "%{size_download}", "\(base)/\(url)"]
            p.standardOutput = try FileHandle(forWritingTo: out)
            p.standardError = FileHandle.nullDevice
            try p.run()
            running.append((p, out))
        }
        var sampled = 0
        while running.contains(where: { $0.0.isRunning }) {
            sampled = max(sampled, try Self.status(server.pid).rss)
            Thread.sleep(forTimeInterval: 0.1)
        }
        let delivered = try running.reduce(0) { sum, client in
            sum + (Int(try String(contentsOf: client.1, encoding: .utf8).trimmingCharacters(in: .whitespaces)) ?? 0)
        }
        let after = try Self.status(server.pid)
        let pulled = try Self.readBytes(server.pid) - readBefore
        print("serve-slow: RSS before the clients \(Self.mib(before.rss)); sampled peak \(Self.mib(sampled)); VmHWM \(Self.mib(after.hwm))")
        print("serve-slow: \(clients) clients got \(Self.mib(delivered)) in \(seconds) s; serve read \(Self.mib(pulled)) meanwhile"
              + " (\(Self.mib(max(0, pulled - delivered))) more, \(Self.mib(max(0, pulled - delivered) / max(1, clients))) per client)")
        Bench.printTable([
            BenchRow(job: "serve --http peak RSS, \(clients) clients at \(Self.mib(rate))/s on a \(mebibytes) MiB path, \(seconds) s",
                     ours: Self.mib(after.hwm), nix: "-", ratio: "-", target: "< 64 MiB", met: after.hwm < 64 << 20),
            BenchRow(job: "bytes read from the builder meanwhile", ours: Self.mib(pulled),
                     nix: "clients got \(Self.mib(delivered))", ratio: String(format: "%.2fx", Double(pulled) / Double(max(1, delivered))),
                     target: "-", met: nil),
        ])
    }

    /// The URL the server prints once it listens.
    static func waitForURL(_ log: String, _ server: SpawnedProcess) throws -> String {
        for _ in 0..<300 {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("http://") }) { return String(line) }
            guard server.isRunning else { throw BenchFailure("serve --http exited: \(text)") }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw BenchFailure("serve --http did not start listening")
    }

    /// VmRSS and VmHWM of a process, bytes.
    static func status(_ pid: pid_t) throws -> (rss: Int, hwm: Int) {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// Bytes the process read so far (`rchar`: sockets and pipes included).
    static func readBytes(_ pid: pid_t) throws -> Int {
        let text = try String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("rchar:") }),
              let n = Int(line.split(separator: " ").last ?? "") else { throw BenchFailure("no rchar in /proc/\(pid)/io") }
        return n
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) }
}
