import Bridge
import Foundation
import Glibc
import NixCore
import Testing
import TestSupport

/// The slot locks are Nix's own: real `nix-build` (its build hook, `nix __build-remote`) and a
/// Scheduler on the same `current-load` directory see each other's builds. The hook of a
/// chroot store `--store DIR` keeps its locks in `DIR/nix/var/nix/current-load`.
@Suite(.serialized, .tags(.realNix, .hostTools), .enabled(if: TestSupport.hasNix && TestSupport.has("ssh"), "needs the nix CLI and ssh"))
struct SchedulerNixHookTests {
    static let machine = "ssh://127.0.0.1 aarch64-linux"

    struct Setup {
        var dir: URL
        var expression: URL
        var stateDirectory: String
        var scheduler: Scheduler
        var machines: [Machine]

        init(_ label: String) throws {
            dir = try TestSupport.temporaryDirectory("nb-hook")
            expression = dir.appendingPathComponent("drv.nix")
            try Data(SchedulerFixtures.derivationExpression(name: "nb-hook-\(label)", system: "aarch64-linux").utf8)
                .write(to: expression)
            stateDirectory = dir.path + "/root/nix/var/nix/current-load"
            machines = try MachinesFile.parse(SchedulerNixHookTests.machine, file: nil, localSystem: "x86_64-linux").machines
            scheduler = Scheduler(machines: machines, stateDirectory: stateDirectory, pollInterval: .milliseconds(20),
                                  warn: { _ in })
        }

        /// `nix-build -j0` in the chroot store, ssh going to `port`; output in `log`.
        func startNixBuild(port: UInt16, log: String) throws -> SpawnedProcess {
            let nixBuild = try #require(TestSupport.which("nix-build"))
            return try SpawnedProcess([nixBuild, "--store", dir.path + "/root", "-j0", "--no-out-link",
                                       "--option", "substituters", "", "--builders", SchedulerNixHookTests.machine,
                                       expression.path], logFile: log, environment: ["NIX_SSHOPTS": "-p \(port)"])
        }
    }

    /// A TCP port that completes connections (the kernel's backlog) but never answers: ssh waits
    /// for the server's banner, so the hook holds its slot until the socket is closed.
    final class SilentListener {
        let fd: Int32
        let port: UInt16

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            self.fd = fd
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &len) == 0
                }
            }
            guard ok else { throw SchedulerFixtures.FixtureError("listen: \(String(cString: strerror(errno)))") }
            port = UInt16(bigEndian: addr.sin_port)
        }

        /// Closing resets the waiting connection.
        func close() { _ = Glibc.close(fd) }
    }

    static func waitFor(_ what: String, log: String, timeout: TimeInterval = 60, _ condition: () throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition() {
            guard Date() < deadline else {
                throw SchedulerFixtures.FixtureError("timed out waiting for \(what); nix-build printed:\n\(read(log))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test func aSlotHeldByNixsHookIsLoad() async throws {
        let s = try Setup("nix-holds")
        let listener = try SilentListener()
        var closed = false
        defer { if !closed { listener.close() } }
        let log = s.dir.path + "/nix-build.log"
        let nix = try s.startNixBuild(port: listener.port, log: log)
        defer { nix.stop() }
        let needs = BuildNeeds(system: "aarch64-linux")
        try await Self.waitFor("the hook to take the slot", log: log) {
            guard FileManager.default.fileExists(atPath: s.stateDirectory) else { return false }
            return try s.scheduler.assess(needs).first?.load == 1
        }
        #expect(try s.scheduler.assess(needs).first?.decline == .allSlotsBusy(load: 1, maxJobs: 1))
        let waiter = Task { try await s.scheduler.acquire(needs) }
        try await Task.sleep(for: .milliseconds(300))
        listener.close()
        closed = true
        try await Self.waitFor("nix-build to give up", log: log) { !nix.isRunning }
        #expect(Self.read(log).contains("cannot build on '\(s.machines[0].storeUri)': "))
        let slot = try #require(try await waiter.value)
        #expect(slot.machine == s.machines[0])
    }

    @Test func nixsHookWaitsForOurSlot() async throws {
        let s = try Setup("we-hold")
        let refused = try SilentListener()
        refused.close() // nothing listens there any more: ssh is refused at once
        let needs = BuildNeeds(system: "aarch64-linux")
        let slot = try #require(try await s.scheduler.acquire(needs))
        let log = s.dir.path + "/nix-build.log"
        let nix = try s.startNixBuild(port: refused.port, log: log)
        defer { nix.stop() }
        try await Self.waitFor("nix-build to wait", log: log) { Self.read(log).contains("waiting for a machine to build") }
        let waiting = Self.read(log)
        #expect(!waiting.contains("cannot build on"))
        let drvLine = try #require(waiting.split(separator: "\n").first { $0.hasPrefix("waiting for a machine") })
        let drvPath = try #require(waiting.split(separator: "\n").first { $0.hasPrefix("  /") }).dropFirst(2)
        #expect(String(drvLine) == Scheduler.waitingMessage(drvPath: String(drvPath)))
        #expect(nix.isRunning)
        slot.release()
        try await Self.waitFor("nix-build to try the machine", log: log) { !nix.isRunning }
        let done = Self.read(log)
        #expect(done.contains("cannot build on '\(s.machines[0].storeUri)': "))
        #expect(done.contains("Failed to find a machine for remote build!"))
    }
}
