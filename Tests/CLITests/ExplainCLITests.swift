import Foundation
import Testing
import TestSupport

/// `nix-bridge explain` with a real machines file, derivations from the real nix-instantiate,
/// slot locks held by another process, and Nix's own -j0 error for comparison.
@Suite(.serialized, .tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct ExplainCLITests {
    static let machinesFile = """
        # three builders
        ssh-ng://big x86_64-linux,aarch64-linux - 2 2 kvm,big-parallel
        ssh-ng://arm aarch64-linux - 1 1 kvm
        ssh-ng://bench aarch64-linux - 4 1 kvm benchmark

        """

    struct Fixture {
        var dir: URL
        var state: String
        var builders: String

        init() throws {
            dir = try TestSupport.temporaryDirectory("nb-explain")
            state = dir.path + "/state"
            let file = dir.appendingPathComponent("machines")
            try Data(ExplainCLITests.machinesFile.utf8).write(to: file)
            builders = "@" + file.path
        }

        func drv(_ name: String, system: String, features: [String] = []) throws -> String {
            try SchedulerFixtures.instantiate(
                SchedulerFixtures.derivationExpression(name: name, system: system, features: features),
                in: dir, file: name + ".nix")
        }

        func explain(_ args: [String]) throws -> TestSupport.Output {
            let binary = try #require(CLI.binary, "nix-bridge is not built")
            return try TestSupport.run([binary, "explain"] + args, environment: ["NIX_BRIDGE_STATE_DIR": state], check: false)
        }
    }

    @Test func explainsEveryMachine() throws {
        let f = try Fixture()
        let drv = try f.drv("nb-explain-arm", system: "aarch64-linux", features: ["kvm"])
        let out = try f.explain(["--builders", f.builders, drv])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.text == """
            \(drv)
              needs: system aarch64-linux, features [kvm]
            * ssh-ng://big: accepts; load 0/2, speed factor 2 (picked)
              ssh-ng://arm: accepts; load 0/1, speed factor 1
              ssh-ng://bench: declines: mandatory feature 'benchmark' not required; load 0/4, speed factor 1

            """)
    }

    @Test func declinesForSystemAndFeatures() throws {
        let f = try Fixture()
        let drv = try f.drv("nb-explain-bp", system: "aarch64-linux", features: ["big-parallel", "benchmark", "kvm"])
        let out = try f.explain(["--builders", f.builders, drv + "^out"])
        #expect(out.status == 1)
        #expect(out.stderr.hasPrefix("Failed to find a machine for remote build!\n"))
        #expect(out.text.split(separator: "\n").dropFirst(2) == [
            "  ssh-ng://big: declines: missing required feature 'benchmark'; load 0/2, speed factor 2",
            "  ssh-ng://arm: declines: missing required features 'benchmark', 'big-parallel'; load 0/1, speed factor 1",
            "  ssh-ng://bench: declines: missing required feature 'big-parallel'; load 0/4, speed factor 1",
            "  no machine can build it",
        ])
        let x86 = try f.drv("nb-explain-x86", system: "x86_64-linux")
        let out2 = try f.explain(["--builders", f.builders, x86 + "^*"])
        #expect(out2.text.contains("  ssh-ng://arm: declines: does not build for system 'x86_64-linux' (only aarch64-linux); load 0/1"))
    }

    /// Slots held by another process count as load: the fast machine is full, so the next one is picked.
    @Test(.tags(.hostTools), .enabled(if: TestSupport.has("flock"), "needs the flock CLI (util-linux)"))
    func busySlotsOfAnotherProcess() throws {
        let f = try Fixture()
        let drv = try f.drv("nb-explain-arm", system: "aarch64-linux", features: ["kvm"])
        let dir = f.state + "/current-load"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let held = try (0..<2).map {
            try SchedulerFixtures.HeldLock(path: SchedulerFixtures.slotLockPath(directory: dir, storeUri: "ssh-ng://big", slot: $0))
        }
        let out = try f.explain(["--builders", f.builders, drv])
        #expect(out.text.contains("  ssh-ng://big: declines: all slots busy (2/2); load 2/2, speed factor 2\n* ssh-ng://arm: accepts; load 0/1, speed factor 1 (picked)"))
        let arm = try SchedulerFixtures.HeldLock(path: SchedulerFixtures.slotLockPath(directory: dir, storeUri: "ssh-ng://arm", slot: 0))
        let busy = try f.explain(["--builders", f.builders, drv])
        #expect(busy.status == 0)
        #expect(busy.text.hasSuffix("  every eligible machine is busy: a build would wait\n"))
        held[1].release()
        let json = try f.explain(["--json", "--builders", f.builders, drv])
        let report = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [[String: Any]])
        let machines = try #require(report.first?["machines"] as? [[String: Any]])
        #expect(machines.map { $0["load"] as? Int } == [1, 1, 0])
        #expect(report.first?["picked"] as? String == "ssh-ng://big")
        withExtendedLifetime((held, arm)) {}
    }

    @Test func json() throws {
        let f = try Fixture()
        let drv = try f.drv("nb-explain-arm", system: "aarch64-linux", features: ["kvm"])
        let out = try f.explain(["--json", "--builders", f.builders, drv])
        #expect(out.status == 0)
        let reports = try #require(try JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]])
        #expect(reports.count == 1)
        let r = reports[0]
        #expect(r["derivation"] as? String == drv)
        #expect(r["system"] as? String == "aarch64-linux")
        #expect(r["requiredFeatures"] as? [String] == ["kvm"])
        #expect(r["picked"] as? String == "ssh-ng://big")
        #expect(r["fits"] as? Bool == true)
        let machines = try #require(r["machines"] as? [[String: Any]])
        #expect(machines.map { $0["storeUri"] as? String } == ["ssh-ng://big", "ssh-ng://arm", "ssh-ng://bench"])
        #expect(machines.map { $0["accepts"] as? Bool } == [true, true, false])
        #expect(machines.map { $0["picked"] as? Bool } == [true, false, false])
        #expect(machines.map { $0["maxJobs"] as? Int } == [2, 1, 4])
        #expect(machines.map { $0["speedFactor"] as? Double } == [2, 1, 1])
        #expect(machines[2]["mandatoryFeatures"] as? [String] == ["benchmark"])
        let decline = try #require(machines[2]["decline"] as? [String: String])
        #expect(decline == ["kind": "mandatoryNotRequired", "reason": "mandatory feature 'benchmark' not required"])
    }

    /// No machine fits: status 1 and, on stderr, what real `nix-build -j0` prints.
    @Test(arguments: [true, false])
    func noMachineFitsReadsLikeNix(withMachines: Bool) throws {
        let f = try Fixture()
        let drv = try f.drv("nb-explain-riscv", system: "riscv64-linux", features: ["kvm"])
        let builders = withMachines ? f.builders : ""
        let out = try f.explain(["--builders", builders, drv])
        #expect(out.status == 1)
        let real = try SchedulerFixtures.nixBuildJ0(drv: drv, builders: builders)
        #expect(real.status == 1)
        let ours = out.stderr.hasSuffix("\n") ? String(out.stderr.dropLast()) : out.stderr
        #expect(ours == real.text)
        let json = try f.explain(["--json", "--builders", builders, drv])
        #expect(json.status == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [[String: Any]])
        #expect(report.first?["fits"] as? Bool == false)
        #expect(report.first?["picked"] is NSNull)
    }

    @Test func rejectsWhatIsNotADerivation() throws {
        let f = try Fixture()
        let out = try f.explain(["--builders", f.builders, "/nix/store/0ybgzd0ji3k8s3wrzcgp7r4gvdv8r9sw-hello"])
        #expect(out.status == 1)
        #expect(out.stderr.hasPrefix("error: '/nix/store/0ybgzd0ji3k8s3wrzcgp7r4gvdv8r9sw-hello' is not a store path or derivation output: not a derivation"))
        let missing = try f.explain(["--builders", f.builders, "/nix/store/0ybgzd0ji3k8s3wrzcgp7r4gvdv8r9sw-gone.drv"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("is not in the local store"))
    }

    /// `--option NAME VALUE` takes exactly two values, as in Nix: what follows is a target.
    @Test func targetsAfterAnOption() throws {
        let f = try Fixture()
        let drv = try f.drv("nb-explain-opt", system: "aarch64-linux", features: ["kvm"])
        let out = try f.explain(["--option", "builders", "ssh-ng://only aarch64-linux - 1 1 kvm", drv])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.text.contains("* ssh-ng://only: accepts"))
        let short = try f.explain([drv, "--option", "builders"])
        #expect(short.status == 1)
        #expect(short.stderr.contains("'--option' requires two arguments (NAME VALUE)"))
    }
}
