import Foundation
import NixCore
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `nix-bridge lookup` and `substitute` interrupted as a user interrupts them (SIGINT,
/// SIGTERM) or killed (SIGKILL), against two real builders: builder1 behind a latency proxy
/// so a 64 MiB NAR takes seconds, builder2 behind a link silent from its first byte so a
/// lookup waits on it. Afterwards: Nix's `error: interrupted by the user` and status 1, the
/// children it started gone, no temporary file, the destination verifies without the
/// half-fetched path, and the same command run again completes.
@Suite("nix-bridge interrupted", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class InterruptCLITests {
    let env: Fleet
    let slow: LatencyProxy
    let silent: SilentProxy
    let key1, key2: SigningKey
    let large: StoreFixture
    let small: StoreFixture
    let environment: [String: String]
    let dest: URL
    let tmp: URL

    init() throws {
        env = try Fleet(count: 2, label: "nb-cli-interrupt")
        key1 = try SigningKey.generate(name: "builder1-1", in: env.work)
        key2 = try SigningKey.generate(name: "builder2-1", in: env.work)
        large = try StoreFixture.large(mebibytes: 64, name: "interrupt-large", seed: 61)
        small = try StoreFixture.make(count: 2, seed: 62, namePrefix: "interrupt-small")
        let both = StoreFixture.combined([large, small])
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(1).storeRoot), fixture: both, signWith: key1)
        _ = try FixtureStore.create(at: URL(fileURLWithPath: env.builder(2).storeRoot), fixture: both, signWith: key2)
        slow = try LatencyProxy(targetPort: env.builder(1).port, delay: .milliseconds(20))
        silent = try SilentProxy(targetPort: env.builder(2).port, silentFromStart: true)
        let config = env.work.appendingPathComponent("ssh_config_interrupt").path
        try ("Host builder1\n  Port \(slow.port)\n\nHost builder2\n  Port \(silent.port)\n\n" + String(contentsOfFile: env.sshConfig, encoding: .utf8))
            .write(toFile: config, atomically: true, encoding: .utf8)
        tmp = env.work.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        var e = env.environment
        e["NIX_SSHOPTS"] = "-F \(config)"
        e["NIX_BRIDGE_STATE_DIR"] = env.work.appendingPathComponent("state").path
        e["TMPDIR"] = tmp.path
        environment = e
        dest = try FixtureStore.scratchDirectory("nb-cli-interrupt-dest")
    }

    deinit {
        slow.stop()
        silent.stop()
        try? FileManager.default.removeItem(at: dest)
    }

    var destURI: String { "local?root=\(dest.path)" }
    var largePath: String { large.printedPaths[0] }

    func args(builders: String = "ssh-ng://builder1 x86_64-linux - 1 1") -> [String] {
        ["--builders", builders,
         "--option", "trusted-public-keys", "\(key1.publicKey) \(key2.publicKey)",
         "--narinfo-cache", env.work.appendingPathComponent("narinfo.sqlite").path]
    }

    /// `nix-bridge ARGS` started in the background, its output in a log file.
    func start(_ arguments: [String]) throws -> (SpawnedProcess, String) {
        let binary = try #require(CLI.binary)
        let log = env.work.appendingPathComponent("bridge-\(UUID().uuidString.prefix(8)).log").path
        return (try SpawnedProcess([binary] + arguments, logFile: log, environment: environment), log)
    }

    func destinationPaths() throws -> [String] {
        let out = try TestSupport.nix(["path-info", "--all", "--store", destURI])
        return out.text.split(separator: "\n").map(String.init)
    }

    func destinationVerifies() throws -> Bool {
        let v = try TestSupport.run(["nix-store", "--store", destURI, "--verify", "--check-contents"], check: false)
        return v.status == 0 && !v.stderr.contains("corrupt") && !v.stderr.contains("modified")
    }

    /// What the destination's store directory holds besides its valid paths (and `.links`):
    /// a half-written path or its lock.
    func strayEntries() throws -> [String] {
        let valid = Set(try destinationPaths().map { String($0.dropFirst(StoreDirectory.default.path.count + 1)) })
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dest.path + StoreDirectory.default.path)) ?? []
        return entries.filter { $0 != ".links" && !valid.contains($0) }.sorted()
    }

    var halfWritten: [String] {
        let name = String(largePath.dropFirst(StoreDirectory.default.path.count + 1))
        return [name, name + ".lock"]
    }

    var temporaryFiles: [String] { (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? [] }

    /// Starts `substitute` of the 64 MiB path and waits until its NAR is arriving in the destination.
    func substituteUntilMidNAR() throws -> (SpawnedProcess, String, [pid_t]) {
        let (p, log) = try start(["substitute", "--store", destURI] + args() + [largePath])
        let target = dest.path + largePath
        let arriving = waitUntil(60) { treeSize(target) >= 1 << 20 || !p.isRunning }
        #expect(arriving && p.isRunning, "the NAR was arriving: \(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self))")
        #expect(treeSize(target) < 64 << 20, "not all of it yet")
        return (p, log, ProcessTree.descendants(of: p.pid))
    }

    @Test(arguments: [SIGINT, SIGTERM])
    func signalDuringNARTransfer(_ number: Int32) throws {
        let (p, log, children) = try substituteUntilMidNAR()
        #expect(!children.isEmpty, "the destination's nix-daemon runs under nix-bridge")
        p.expectInterrupted(by: number, log: log, within: .seconds(5))
        #expect(children.filter(ProcessTree.isAlive).isEmpty, "every child ended and reaped: \(children.filter(ProcessTree.isAlive))")
        try expectCutOffMidNARThenRerunCompletes()
    }

    @Test func killedMidNARThenRerun() throws {
        let (p, _, children) = try substituteUntilMidNAR()
        kill(p.pid, SIGKILL)
        #expect(p.waitForExit(timeout: 10) == .signalled(SIGKILL))
        // Its nix-daemon reads the end of its input and exits by itself.
        #expect(waitUntil(10) { children.filter(ProcessTree.isAlive).isEmpty }, "\(children.filter(ProcessTree.isAlive))")
        try expectCutOffMidNARThenRerunCompletes()
    }

    /// The destination's daemon was cut off mid-NAR: the store verifies without the path; the
    /// daemon left the half-written path and its lock (invalid: Nix's garbage), which the
    /// rerun deletes before it completes.
    func expectCutOffMidNARThenRerunCompletes() throws {
        #expect(try destinationVerifies())
        #expect(try !destinationPaths().contains(largePath), "the half-fetched path is not valid")
        let stray = try strayEntries()
        #expect(stray == halfWritten, "\(stray)")
        #expect(temporaryFiles.isEmpty, "\(temporaryFiles)")
        try rerunCompletes()
    }

    func rerunCompletes() throws {
        let (p, log) = try start(["substitute", "--store", destURI] + args() + [largePath])
        let ending = p.waitForExit(timeout: 120)
        #expect(ending == .exited(0), "\(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self))")
        #expect(try destinationPaths().contains(largePath))
        #expect(try destinationVerifies())
        #expect(try strayEntries().isEmpty)
        #expect(temporaryFiles.isEmpty, "\(temporaryFiles)")
    }

    @Test(arguments: [SIGINT, SIGTERM])
    func signalDuringLookup(_ number: Int32) throws {
        // builder2's link is silent: the lookup waits on it; the local store beside it is a
        // nix-daemon child.
        let both = "ssh-ng://builder1 x86_64-linux - 1 1 ; ssh-ng://builder2 x86_64-linux - 1 1"
        let (p, log) = try start(["lookup"] + args(builders: both)
                                 + ["--option", "connect-timeout", "60", "--substituters", env.localStore(1), "--no-cache"]
                                 + small.printedPaths)
        let dialled = waitUntil(30) { silent.connections >= 1 && !ProcessTree.descendants(of: p.pid).isEmpty }
        #expect(dialled && p.isRunning)
        usleep(300_000)
        let children = ProcessTree.descendants(of: p.pid)
        p.expectInterrupted(by: number, log: log, within: .seconds(3))
        #expect(children.filter(ProcessTree.isAlive).isEmpty, "\(children.filter(ProcessTree.isAlive))")
        #expect(temporaryFiles.isEmpty, "\(temporaryFiles)")
    }

    /// `ping` and `path-info` waiting on builder2's silent SSH handshake.
    @Test(arguments: [["ping", "--store", "ssh-ng://builder2"], ["path-info", "--store", "ssh-ng://builder2", "/nix/store/00000000000000000000000000000000-x"]])
    func signalWhileConnecting(_ command: [String]) throws {
        let before = silent.connections
        let (p, log) = try start(command + ["--option", "connect-timeout", "60"])
        #expect(waitUntil(30) { silent.connections > before } && p.isRunning)
        usleep(300_000)
        p.expectInterrupted(by: SIGINT, log: log, within: .seconds(3))
    }

    /// A second signal does not wait for the clean-up: the process dies by it. The
    /// destination's daemon is stopped (SIGSTOP) so that the clean-up after the first waits.
    @Test func aSecondSignalEndsItAtOnce() throws {
        let (p, _, children) = try substituteUntilMidNAR()
        let daemon = try #require(children.first)
        kill(daemon, SIGSTOP)
        defer { kill(daemon, SIGCONT) }
        kill(p.pid, SIGINT)
        #expect(p.waitForExit(timeout: 1) == nil, "the first waits for the stopped daemon")
        let sent = ContinuousClock.now
        kill(p.pid, SIGINT)
        #expect(p.waitForExit(timeout: 10) == .signalled(SIGINT))
        #expect(ContinuousClock.now - sent < .seconds(1))
        kill(daemon, SIGCONT)
        #expect(waitUntil(10) { !ProcessTree.isAlive(daemon) }, "the daemon reads the end of its input and exits")
        #expect(try destinationVerifies())
        #expect(try !destinationPaths().contains(largePath))
    }

    /// A child that neither reads the end of its input nor acts on SIGTERM (here: stopped)
    /// is killed after 5 s; the command still ends as interrupted.
    @Test func aChildThatDoesNotEndIsKilled() throws {
        let (p, log, children) = try substituteUntilMidNAR()
        let daemon = try #require(children.first)
        kill(daemon, SIGSTOP)
        defer { kill(daemon, SIGCONT) }
        let sent = ContinuousClock.now
        kill(p.pid, SIGTERM)
        let ending = p.waitForExit(timeout: 20)
        let took = ContinuousClock.now - sent
        #expect(ending == .exited(1), "\(String(describing: ending))")
        #expect(took >= .seconds(4) && took < .seconds(9), "\(took)")
        let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
        #expect(text.hasSuffix("error: interrupted by the user\n"), "\(text)")
        #expect(!ProcessTree.isAlive(daemon), "killed and reaped")
        #expect(try destinationVerifies())
        #expect(try !destinationPaths().contains(largePath))
    }
}
