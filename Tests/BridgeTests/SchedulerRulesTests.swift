import Bridge
import Foundation
import NixCore
import Testing
import TestSupport

/// Nix's build-hook rules for choosing a machine, as `assess` and `acquire` apply them.
@Suite struct SchedulerRulesTests {
    static func machines(_ spec: String) throws -> [Machine] {
        try MachinesFile.parse(spec, file: nil, localSystem: "x86_64-linux").machines
    }

    static func scheduler(_ spec: String) throws -> Scheduler {
        let dir = try TestSupport.temporaryDirectory("nb-sched")
        return Scheduler(machines: try machines(spec), stateDirectory: dir.path + "/current-load",
                         pollInterval: .milliseconds(10), warn: { _ in })
    }

    /// The decline kinds in file order (nil = accepts) and the picked machine's index.
    static func verdicts(_ s: Scheduler, _ needs: BuildNeeds) throws -> ([String?], Int?) {
        let a = try s.assess(needs)
        return (a.map { $0.decline?.kind }, a.firstIndex(where: \.isPick))
    }

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var machines: String
        var system: String
        var features: Set<String>
        var kinds: [String?]
        var pick: Int?
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "system must match", machines: "ssh-ng://a x86_64-linux ; ssh-ng://b aarch64-linux",
             system: "aarch64-linux", features: [], kinds: ["system", nil], pick: 1),
        Case(name: "any of several systems", machines: "ssh-ng://a i686-linux,x86_64-linux",
             system: "x86_64-linux", features: [], kinds: [nil], pick: 0),
        Case(name: "builtin runs anywhere", machines: "ssh-ng://a aarch64-linux ; ssh-ng://b x86_64-darwin",
             system: "builtin", features: [], kinds: [nil, nil], pick: 0),
        Case(name: "missing feature", machines: "ssh-ng://a x86_64-linux - 1 1 kvm ; ssh-ng://b x86_64-linux - 1 1 kvm,big-parallel",
             system: "x86_64-linux", features: ["kvm", "big-parallel"], kinds: ["missingFeatures", nil], pick: 1),
        Case(name: "a mandatory feature counts as supported", machines: "ssh-ng://a x86_64-linux - 1 1 - benchmark",
             system: "x86_64-linux", features: ["benchmark"], kinds: [nil], pick: 0),
        Case(name: "mandatory feature not required", machines: "ssh-ng://a x86_64-linux - 1 1 kvm benchmark ; ssh-ng://b x86_64-linux",
             system: "x86_64-linux", features: [], kinds: ["mandatoryNotRequired", nil], pick: 1),
        Case(name: "all mandatory features must be required", machines: "ssh-ng://a x86_64-linux - 1 1 - benchmark,kvm",
             system: "x86_64-linux", features: ["kvm"], kinds: ["mandatoryNotRequired"], pick: nil),
        Case(name: "unrequired supported features are fine", machines: "ssh-ng://a x86_64-linux - 1 1 kvm,nixos-test",
             system: "x86_64-linux", features: [], kinds: [nil], pick: 0),
        Case(name: "system is checked before features", machines: "ssh-ng://a aarch64-linux - 1 1 - benchmark",
             system: "x86_64-linux", features: ["kvm"], kinds: ["system"], pick: nil),
        Case(name: "max jobs 0 never takes a build", machines: "ssh-ng://a x86_64-linux - 0 ; ssh-ng://b x86_64-linux",
             system: "x86_64-linux", features: [], kinds: ["allSlotsBusy", nil], pick: 1),
        Case(name: "equal machines: file order", machines: "ssh-ng://a x86_64-linux - 2 ; ssh-ng://b x86_64-linux - 2",
             system: "x86_64-linux", features: [], kinds: [nil, nil], pick: 0),
        Case(name: "idle: the higher speed factor wins", machines: "ssh-ng://a x86_64-linux - 1 1 ; ssh-ng://b x86_64-linux - 1 4 ; ssh-ng://c x86_64-linux - 1 2",
             system: "x86_64-linux", features: [], kinds: [nil, nil, nil], pick: 1),
    ]

    @Test(arguments: cases)
    func rule(_ c: Case) throws {
        let s = try Self.scheduler(c.machines)
        let (kinds, pick) = try Self.verdicts(s, BuildNeeds(system: c.system, requiredFeatures: c.features))
        #expect(kinds == c.kinds)
        #expect(pick == c.pick)
    }

    @Test func declineTextsNameWhatIsMissing() throws {
        let s = try Self.scheduler("ssh-ng://a x86_64-linux,i686-linux ; ssh-ng://b aarch64-linux - 1 1 kvm ; ssh-ng://c aarch64-linux - 1 1 big-parallel,kvm benchmark")
        let a = try s.assess(BuildNeeds(system: "aarch64-linux", requiredFeatures: ["kvm", "big-parallel", "nixos-test"]))
        #expect(a[0].decline == .system(needed: "aarch64-linux", supported: ["x86_64-linux", "i686-linux"]))
        #expect(a[1].decline == .missingFeatures(["big-parallel", "nixos-test"]))
        #expect(a[2].decline == .missingFeatures(["nixos-test"]))
        #expect("\(a[0].decline!)" == "does not build for system 'aarch64-linux' (only x86_64-linux, i686-linux)")
        #expect("\(a[1].decline!)" == "missing required features 'big-parallel', 'nixos-test'")
        let b = try s.assess(BuildNeeds(system: "aarch64-linux", requiredFeatures: ["kvm", "big-parallel"]))
        #expect(b[2].decline == .mandatoryNotRequired(["benchmark"]))
        #expect("\(b[2].decline!)" == "mandatory feature 'benchmark' not required")
    }

    @Test func needsOfARealDerivation() throws {
        let drv = try Derivation(parsing: Array("""
            Derive([("out","/nix/store/0ybgzd0ji3k8s3wrzcgp7r4gvdv8r9sw-x","","")],[],[],"aarch64-linux","/bin/sh",[],\
            [("out","/nix/store/0ybgzd0ji3k8s3wrzcgp7r4gvdv8r9sw-x"),("requiredSystemFeatures","kvm  big-parallel")])
            """.utf8), name: "x")
        let needs = try BuildNeeds(drv)
        #expect(needs == BuildNeeds(system: "aarch64-linux", requiredFeatures: ["kvm", "big-parallel"]))
    }

    /// Load counts against speed: load / speed factor, lowest first.
    @Test func loadPerSpeedFactor() async throws {
        // a: 4 slots, speed 4; b: 2 slots, speed 1.
        let s = try Self.scheduler("ssh-ng://a x86_64-linux - 4 4 ; ssh-ng://b x86_64-linux - 2 1")
        let needs = BuildNeeds(system: "x86_64-linux")
        var held: [Slot] = []
        // Idle: 0/4 == 0/1, a is faster. Then a at 1/4 beats b at 0/1? No: 0 < 0.25, b next.
        let expected = ["ssh-ng://a", "ssh-ng://b", "ssh-ng://a", "ssh-ng://a", "ssh-ng://a", "ssh-ng://b"]
        for uri in expected {
            let slot = try #require(try await s.acquire(needs))
            #expect(slot.machine.storeUri == uri)
            held.append(slot)
        }
        let full = try s.assess(needs)
        #expect(full.map(\.load) == [4, 2])
        #expect(full.map(\.decline) == [.allSlotsBusy(load: 4, maxJobs: 4), .allSlotsBusy(load: 2, maxJobs: 2)])
        let anyPick = full.contains { $0.isPick }
        #expect(!anyPick)
        held[1].release() // b's first slot
        let after = try s.assess(needs)
        #expect(after.map(\.load) == [4, 1])
        #expect(after[1].isPick)
        let again = try #require(try await s.acquire(needs))
        #expect(again.machine.storeUri == "ssh-ng://b" && again.number == 0)
        withExtendedLifetime(held) {}
    }

    @Test func noMachineEverMeansNil() async throws {
        let s = try Self.scheduler("ssh-ng://a x86_64-linux ; ssh-ng://b x86_64-linux - 0")
        #expect(try await s.acquire(BuildNeeds(system: "aarch64-linux")) == nil)
        #expect(try await s.acquire(BuildNeeds(system: "x86_64-linux", requiredFeatures: ["kvm"])) == nil)
        let none = Scheduler(machines: [], stateDirectory: try TestSupport.temporaryDirectory().path)
        #expect(try await none.acquire(BuildNeeds(system: "x86_64-linux")) == nil)
    }

    @Test func disabledMachinesAreSkippedForTheRun() async throws {
        let warnings = WarningLog()
        let dir = try TestSupport.temporaryDirectory("nb-sched")
        let ms = try Self.machines("ssh-ng://a x86_64-linux - 1 2 ; b x86_64-linux")
        let s = Scheduler(machines: ms, stateDirectory: dir.path, pollInterval: .milliseconds(10),
                          warn: { warnings.append($0) })
        let needs = BuildNeeds(system: "x86_64-linux")
        let first = try #require(try await s.acquire(needs))
        #expect(first.machine == ms[0])
        first.release()
        let text = s.disable(ms[0], reason: "error: cannot open connection to remote store 'ssh-ng://a'")
        #expect(text == "cannot build on 'ssh-ng://a': error: cannot open connection to remote store 'ssh-ng://a'")
        #expect(warnings.lines == [text])
        let a = try s.assess(needs)
        #expect(a[0].decline == .disabled(reason: "error: cannot open connection to remote store 'ssh-ng://a'"))
        #expect(a[1].isPick)
        let second = try #require(try await s.acquire(needs))
        #expect(second.machine.storeUri == "ssh://b")
        second.release()
        s.disable(ms[1], reason: "unreachable")
        #expect(try await s.acquire(needs) == nil)
        #expect(s.disabledReason(ms[1]) == "unreachable")
    }

    @Test func defaultStateDirectory() {
        #expect(Scheduler.defaultStateDirectory(environment: ["NIX_BRIDGE_STATE_DIR": "/s", "HOME": "/h"]) == "/s/current-load")
        #expect(Scheduler.defaultStateDirectory(environment: ["XDG_STATE_HOME": "/x", "HOME": "/h"]) == "/x/nix-bridge/current-load")
        #expect(Scheduler.defaultStateDirectory(environment: ["HOME": "/h"]) == "/h/.local/state/nix-bridge/current-load")
    }
}

final class WarningLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ s: String) { lock.withLock { stored.append(s) } }
    var lines: [String] { lock.withLock { stored } }
}
