import Foundation
import NixCore
import NixWire
import Testing
import TestSupport
@testable import Bridge

/// Exit statuses as Nix's `Worker::exitStatus()` (src/libstore/build/worker.cc at 2.8.0).
struct BuildExitStatusTests {
    @Test("worker.cc's bits: 100 failure, 101 timed out, 102 hash mismatch, 104 not deterministic, combined; else 1")
    func bits() {
        typealias K = BuildFailure.Kind
        #expect(BuildError.exitStatus([K]()) == 1)
        #expect(BuildError.exitStatus([K.other, .dependencyFailed]) == 1)
        #expect(BuildError.exitStatus([K.permanent]) == 100)
        #expect(BuildError.exitStatus([K.timedOut]) == 101)
        #expect(BuildError.exitStatus([K.hashMismatch]) == 102)
        #expect(BuildError.exitStatus([K.notDeterministic]) == 104)
        #expect(BuildError.exitStatus([K.timedOut, .hashMismatch]) == 103)
        #expect(BuildError.exitStatus([K.permanent, .notDeterministic]) == 108)
        #expect(BuildError.exitStatus([K.permanent, .timedOut, .hashMismatch, .notDeterministic, .other]) == 111)
    }

    @Test("a BuildResult's status gives the kind")
    func kinds() {
        #expect(BuildFailure.kind(of: BuildResult(status: .permanentFailure)) == .permanent)
        #expect(BuildFailure.kind(of: BuildResult(status: .timedOut)) == .timedOut)
        #expect(BuildFailure.kind(of: BuildResult(status: .notDeterministic)) == .notDeterministic)
        #expect(BuildFailure.kind(of: BuildResult(status: .miscFailure)) == .other)
        #expect(BuildFailure.kind(of: BuildResult(status: .outputRejected,
                                                  errorMsg: "hash mismatch in fixed-output derivation '/nix/store/x'")) == .hashMismatch)
    }

    @Test("a builder whose 'timeout' kills the build: exit 101", .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix, sshd and root"))
    func timedOutOnBuilder() async throws {
        let f = try Fleet(features: [[]])
        defer { f.stop() }
        let conf = f.builder(1).nixConfDir + "/nix.conf"
        try (try String(contentsOfFile: conf, encoding: .utf8) + "timeout = 1\n").write(toFile: conf, atomically: true, encoding: .utf8)
        let tag = UUID().uuidString.prefix(8).lowercased()
        let drv = try f.instantiate(f.expression(name: "slow-\(tag)", script: "/bin/sleep 5; echo > $out"))
        do {
            _ = try await f.fleetBuilder().build([try DerivedPath(parsing: drv, in: .default)])
            Issue.record("the build succeeded")
        } catch let e as BuildError {
            #expect(e.exitStatus == 101)
            #expect(e.message.contains("build of '\(drv)' on 'ssh-ng://builder1' failed: "))
            #expect(e.message.contains("timed out"))
        }
    }

    @Test("a fixed-output derivation that produces another hash on the builder: exit 102", .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix, sshd and root"))
    func hashMismatchOnBuilder() async throws {
        let f = try Fleet(features: [[]])
        defer { f.stop() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        // The declared hash is of the empty string; the builder writes something else.
        let expr = """
        derivation { name = "fod-\(tag)"; system = "\(f.system)"; builder = "/bin/sh"; args = [ "-c" "echo \(tag) > $out" ];
          outputHashMode = "flat"; outputHashAlgo = "sha256";
          outputHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; }
        """
        let drv = try f.instantiate(expr)
        do {
            _ = try await f.fleetBuilder().build([try DerivedPath(parsing: drv, in: .default)])
            Issue.record("the build succeeded")
        } catch let e as BuildError {
            #expect(e.exitStatus == 102)
            #expect(e.message.contains("hash mismatch in fixed-output derivation"))
        }
    }
}
