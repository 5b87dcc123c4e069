import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `nix-bridge build` interrupted (SIGINT, SIGTERM) while its one machine builds: Nix's
/// `error: interrupted by the user` and status 1 at once, the remote build stopped (its
/// daemon loses the connection), nothing registered in the client store, no temporary file,
/// the machine's slot lock free for the next command.
@Suite(.serialized, .tags(.realNix, .realSSHD, .builtCLI), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && CLI.isBuilt, "needs nix (nix-bin), sshd, root and a built nix-bridge"))
struct BuildInterruptCLITests {
    @Test(arguments: [SIGINT, SIGTERM])
    func signalDuringARemoteBuild(_ number: Int32) throws {
        let s = try BuildCLITests.Setup(features: [[]], label: "nb-build-interrupt")
        defer { s.f.stop() }
        let tmp = s.f.work.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        let tag = UUID().uuidString.prefix(8).lowercased()
        let marker = "sleep 30.\(Int.random(in: 100_000...999_999))"
        let file = try s.file("sleeper.nix", s.f.expression(name: "sleeper-\(tag)", script: "/bin/\(marker); echo done > $out"))
        let binary = try #require(CLI.binary)
        let log = s.f.work.appendingPathComponent("build.log").path
        let p = try SpawnedProcess([binary, "build", file, "--store", s.f.clientStoreURI, "--builders", "@" + s.f.machinesFile,
                                    "-j", "0", "--option", "trusted-public-keys", s.f.trustedPublicKeys],
                                   logFile: log, environment: s.environment.merging(["TMPDIR": tmp.path]) { $1 })
        let started = waitUntil(60) { !s.f.builderProcesses(1, containing: marker).isEmpty || !p.isRunning }
        let output = { String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self) }
        #expect(started && p.isRunning, "the build started on builder1: \(output())")
        let children = ProcessTree.descendants(of: p.pid)
        let described = children.map(ProcessTree.describe)
        p.expectInterrupted(by: number, log: log, within: .seconds(5))
        #expect(!output().contains("\n/nix/store/"), "no output path printed: \(output())")
        let alive = children.filter(ProcessTree.isAlive)
        #expect(alive.isEmpty, "still running: \(alive.map(ProcessTree.describe)); at the start: \(described)")
        #expect(waitUntil(15) { s.f.builderProcesses(1, containing: marker).isEmpty }, "the remote build was stopped")
        let outPath = try TestSupport.run(["nix-instantiate", "--store", s.f.clientStoreURI, "--eval", "-E", "(import \(file)).outPath"]).trimmed
            .trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        #expect(outPath.hasSuffix("-sleeper-\(tag)"))
        #expect(!s.f.clientHas(outPath))
        let verify = try TestSupport.run(["nix-store", "--store", s.f.clientStoreURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []).isEmpty)
        // Every slot lock is free: another process takes it at once.
        let slots = s.environment["NIX_BRIDGE_STATE_DIR"]! + "/current-load"
        let locks = (try? FileManager.default.contentsOfDirectory(atPath: slots)) ?? []
        #expect(!locks.isEmpty, "the build held a slot")
        for lock in locks {
            let taken = try TestSupport.run(["flock", "-n", slots + "/" + lock, "true"], check: false)
            #expect(taken.status == 0, "\(lock) is free")
        }
    }
}
