import ArgumentParser
import Foundation
import NixCore
import PeerFixtures

/// `nix-bridge-bench serve-slow`: the memory of `nix-bridge serve --http` (the real
/// executable, over a 1-builder loopback fleet) while 10 clients read one 1 GiB path at
/// 1 MiB/s each (`curl --limit-rate`), for a bounded time: the process's peak RSS, the bytes
/// the clients got, and the bytes the builder sent meanwhile (what its sshd sessions wrote:
/// the NARs, encrypted, with SSH's few bytes of framing). Nix has no HTTP server to compare with; what
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
    @Option(help: "The ssh-transport setting serve runs with (auto sends NARs through ssh).") var sshTransport = "auto"

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
        env["NIX_CONFIG"] = "ssh-transport = \(sshTransport)"
        let server = try SpawnedProcess([binary, "serve", "--http", "127.0.0.1:0"], logFile: log, environment: env)
        defer { server.stop() }
        let base = try Self.waitForURL(log, server)
        let narinfo = try PeerFixtures.run(["curl", "-sS", "-f", "\(base)/\(path.hashPart).narinfo"])
        guard let url = narinfo.text.split(separator: "\n").first(where: { $0.hasPrefix("URL: ") })?.dropFirst(5) else {
            throw BenchFailure("no URL in the narinfo: \(narinfo.text)")
        }
        let before = try Self.status(server.pid)
        let idle = Self.breakdown(server.pid)
        // The builder's sshd session processes (children of the listening sshd) write what
        // nix-bridge pulls: their wchar, sampled, summed over the sessions started meanwhile.
        let readBefore = Self.sessionWrites(under: bench.fleet.sshdPIDs).values.reduce(0, +)

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
        var sampled = 0, sshSampled = 0
        var written: [pid_t: Int] = [:]
        let sshd = bench.fleet.sshdPIDs
        var breakdown = Self.breakdown(server.pid)
        while running.contains(where: { $0.0.isRunning }) {
            let now = try Self.status(server.pid).rss
            if now > sampled { breakdown = Self.breakdown(server.pid) }
            sampled = max(sampled, now)
            sshSampled = max(sshSampled, Self.sshRSS(mentioning: dir.path))
            for (pid, n) in Self.sessionWrites(under: sshd) { written[pid] = max(written[pid] ?? 0, n) }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let delivered = try running.reduce(0) { sum, client in
            sum + (Int(try String(contentsOf: client.1, encoding: .utf8).trimmingCharacters(in: .whitespaces)) ?? 0)
        }
        let after = try Self.status(server.pid)
        print("serve-slow: before the clients \(idle); at the sampled peak \(breakdown)")
        let pulled = written.values.reduce(0, +) - readBefore
        print("serve-slow: RSS before the clients \(Self.mib(before.rss)); sampled peak \(Self.mib(sampled)); VmHWM \(Self.mib(after.hwm))"
              + "; its ssh processes (sessions and ControlMaster, ssh-transport = \(sshTransport)) \(Self.mib(sshSampled)) at their sampled peak")
        print("serve-slow: \(clients) clients got \(Self.mib(delivered)) in \(seconds) s; the builder sent \(Self.mib(pulled)) meanwhile"
              + " (\(Self.mib(max(0, pulled - delivered))) more, \(Self.mib(max(0, pulled - delivered) / max(1, clients))) per client)")
        Bench.printTable([
            BenchRow(job: "serve --http peak RSS, \(clients) clients at \(Self.mib(rate))/s on a \(mebibytes) MiB path, \(seconds) s",
                     ours: Self.mib(after.hwm), nix: "-", ratio: "-", target: "< 64 MiB", met: after.hwm < 64 << 20),
            BenchRow(job: "same, with its ssh processes (sampled peak of the sum)", ours: Self.mib(sampled + sshSampled),
                     nix: "-", ratio: "-", target: "-", met: nil),
            BenchRow(job: "bytes the builder sent meanwhile", ours: Self.mib(pulled),
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

    /// Where a process's resident memory is: anonymous (heap, stacks) or file pages (code,
    /// data files, the largest three named), and its thread count.
    static func breakdown(_ pid: pid_t) -> String {
        // Read to the end: /proc files have no size for a one-shot read to go by.
        let smaps = String(decoding: FileHandle(forReadingAtPath: "/proc/\(pid)/smaps")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        var byFile: [String: Int] = [:], anon = 0, name = ""
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), first.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                name = fields.count > 5 ? String(fields[5]) : ""
            } else if fields.first == "Rss:", let kb = Int(fields[1]) {
                if name.hasPrefix("/") { byFile[name, default: 0] += kb * 1024 } else { anon += kb * 1024 }
            }
        }
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let threads = status.split(separator: "\n").first { $0.hasPrefix("Threads:") }?.split(separator: "\t").last ?? "?"
        let top = byFile.sorted { $0.value > $1.value }.prefix(3)
            .map { "\(($0.key as NSString).lastPathComponent) \(mib($0.value))" }.joined(separator: ", ")
        return "anonymous \(mib(anon)), files \(mib(byFile.values.reduce(0, +))) (\(top)), \(threads) threads"
    }

    /// `wchar` of every sshd descending from `roots` (the session processes): bytes written
    /// so far, sockets included.
    static func sessionWrites(under roots: [pid_t]) -> [pid_t: Int] {
        var parent: [pid_t: pid_t] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = pid_t(fields[1]) { parent[pid] = ppid }
        }
        func descends(_ pid: pid_t) -> Bool {
            var p = parent[pid]
            while let q = p, q > 1 { if roots.contains(q) { return true }; p = parent[q] }
            return false
        }
        var out: [pid_t: Int] = [:]
        // Only sshd itself: the nix-daemon under it writes the same bytes to sshd's pipe.
        for pid in parent.keys where descends(pid) {
            guard (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("sshd") == true,
                  let text = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8),
                  let line = text.split(separator: "\n").first(where: { $0.hasPrefix("wchar:") }),
                  let n = Int(line.split(separator: " ").last ?? "") else { continue }
            out[pid] = n
        }
        return out
    }

    /// The summed VmRSS of the `ssh` processes whose command line mentions `text` (the
    /// server's sessions and the ControlMaster, by their control socket under its directory).
    static func sshRSS(mentioning text: String) -> Int {
        var total = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard pid_t(name) != nil, (try? String(contentsOfFile: "/proc/\(name)/comm", encoding: .utf8))?.hasPrefix("ssh\n") == true,
                  let cmd = FileManager.default.contents(atPath: "/proc/\(name)/cmdline"),
                  String(decoding: cmd, as: UTF8.self).contains(text),
                  let status = try? String(contentsOfFile: "/proc/\(name)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                  let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { continue }
            total += kib << 10
        }
        return total
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) }
}
