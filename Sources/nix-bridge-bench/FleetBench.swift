import Dispatch
import Foundation
import NixCore
import NixStore
import NixTransport
import PeerFixtures

/// What the `lookup` and `substitute` benchmarks share: a loopback fleet with signing keys,
/// real Nix run against it with a time limit, timing and the results table.
final class BenchFleet: @unchecked Sendable {
    let fleet: Fleet
    let work: URL
    let keys: [SigningKey]
    var opener = StoreOpener()

    init(builders: Int) throws {
        fleet = try Fleet(count: builders)
        let work = try PeerFixtures.temporaryDirectory("nb-bench")
        self.work = work
        keys = try (1...builders).map { try SigningKey.generate(name: "builder\($0)-1", in: work) }
        opener.sshConfig = try SSHConfig.load(path: fleet.sshConfig)
    }

    /// Ends the sshds and removes the fleet's and our own directories.
    func stop() {
        fleet.stop()
        try? FileManager.default.removeItem(at: fleet.directory)
        try? FileManager.default.removeItem(at: work)
    }

    /// `trusted-public-keys` holding every builder's key.
    var trustedKeys: String { keys.map(\.publicKey).joined(separator: " ") }

    /// Builder `i`'s (1-based) store, filled with `fixture` signed with its key.
    @discardableResult
    func fill(builder i: Int, with fixture: StoreFixture) throws -> FixtureStore {
        try FixtureStore.create(at: URL(fileURLWithPath: fleet.builders[i - 1].storeRoot), fixture: fixture, signWith: keys[i - 1])
    }

    /// SSH logins accepted so far by all the builders' sshds (from their logs).
    func sshLogins() -> Int {
        fleet.builders.reduce(0) { n, b in
            let log = (try? String(contentsOfFile: b.storeRoot.replacingOccurrences(of: "/store", with: "/sshd.log"), encoding: .utf8)) ?? ""
            return n + log.components(separatedBy: "Accepted publickey").count - 1
        }
    }

    /// The environment real Nix runs with: our ssh_config, no default substituters.
    func nixEnvironment(sshConfig: String? = nil) -> [String: String] {
        ["NIX_SSHOPTS": "-F \(sshConfig ?? fleet.sshConfig)",
         "NIX_CONFIG": "experimental-features = nix-command\nsubstituters =\n"]
    }

    /// Runs a real Nix command (killed after `timeout` seconds); returns its wall time.
    func timeNix(_ command: [String], sshConfig: String? = nil, timeout: Int = 120) throws -> (seconds: Double, output: PeerFixtures.Output) {
        let start = ContinuousClock.now
        let out = try PeerFixtures.run(["timeout", "\(timeout)"] + command, environment: nixEnvironment(sshConfig: sshConfig), check: false)
        let seconds = Bench.seconds(ContinuousClock.now - start)
        if out.status == 124 { throw BenchFailure("timed out after \(timeout) s: \(command.prefix(6).joined(separator: " ")) ...") }
        if out.status != 0 {
            throw BenchFailure("\(command.prefix(6).joined(separator: " ")) ... exited \(out.status): \(out.stderr.suffix(2000))")
        }
        return (seconds, out)
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// One line of a results table.
struct BenchRow {
    var job: String
    var ours: String
    var nix: String
    var ratio: String
    var target: String
    var met: Bool?
}

extension Bench {
    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    static func time(_ body: () async throws -> Void) async rethrows -> Double {
        let start = ContinuousClock.now
        try await body()
        return seconds(ContinuousClock.now - start)
    }

    static func timeSync(_ body: () throws -> Void) rethrows -> Double {
        let start = ContinuousClock.now
        try body()
        return seconds(ContinuousClock.now - start)
    }

    static func timeSyncNoThrow(_ body: () -> Void) -> Double {
        let start = ContinuousClock.now
        body()
        return seconds(ContinuousClock.now - start)
    }

    static func format(_ s: Double) -> String {
        s < 1 ? String(format: "%.1f ms", s * 1000) : String(format: "%.2f s", s)
    }

    /// Prints a Markdown table (pasted as is into Docs/Benchmarks.md).
    static func printTable(_ rows: [BenchRow]) {
        print("| job | nix-bridge | Nix 2.8 | ratio | target | met |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in rows {
            let met = r.met.map { $0 ? "yes" : "no" } ?? "-"
            print("| \(r.job) | \(r.ours) | \(r.nix) | \(r.ratio) | \(r.target) | \(met) |")
        }
    }

    /// Runs async work from a synchronous `run()` (ArgumentParser's sync entry point).
    static func block(_ body: @escaping @Sendable () async throws -> Void) throws {
        final class Box: @unchecked Sendable { var error: Error? }
        let box = Box()
        let sem = DispatchSemaphore(value: 0)
        Task {
            do { try await body() } catch { box.error = error }
            sem.signal()
        }
        sem.wait()
        if let error = box.error { throw error }
    }
}
