import NixCore
import Testing
@testable import Bridge

/// build-remote's choice on its own, over given loads (the slot locks are `Scheduler`'s and
/// are tested with real lock files in the other scheduler suites).
struct MachineChoiceTests {
    static func machines(_ spec: String) throws -> [Machine] {
        try MachinesFile.parse(spec, file: nil, localSystem: "x86_64-linux").machines
    }

    static func pick(_ spec: String, loads: [Int], free: [Bool]? = nil) throws -> Int? {
        let ms = try machines(spec)
        let slots = zip(loads, free ?? loads.map { _ in true }).map { MachineChoice.Slots(load: $0, hasFree: $1) }
        return MachineChoice.choose(ms, declines: ms.map { _ in nil }, slots: slots).pick
    }

    @Test("lowest load per speed factor, then the faster, then the less loaded, then file order")
    func order() throws {
        // maxJobs 4, speed factors 1 and 2: load 1 / 1 against 1 / 2.
        try #expect(Self.pick("ssh-ng://a x86_64-linux - 4 1 ; ssh-ng://b x86_64-linux - 4 2", loads: [1, 1]) == 1)
        // 1 / 1 against 2 / 2: equal, the faster wins.
        try #expect(Self.pick("ssh-ng://a x86_64-linux - 4 1 ; ssh-ng://b x86_64-linux - 4 2", loads: [1, 2]) == 1)
        // 0 / 1 against 0 / 1: all equal, the first in the file.
        try #expect(Self.pick("ssh-ng://a x86_64-linux - 4 1 ; ssh-ng://b x86_64-linux - 4 1", loads: [0, 0]) == 0)
        try #expect(Self.pick("ssh-ng://a x86_64-linux - 4 1 ; ssh-ng://b x86_64-linux - 4 1", loads: [2, 1]) == 1)
    }

    @Test("a machine without a free slot is busy with its load; one that declines is never picked")
    func declinedAndBusy() throws {
        let ms = try Self.machines("ssh-ng://a x86_64-linux - 2 1 ; ssh-ng://b aarch64-linux - 2 1 ; ssh-ng://c x86_64-linux - 2 1")
        let needs = BuildNeeds(system: "x86_64-linux")
        let declines = MachineChoice.declines(ms, needs, disabled: [ms[2]: "connection refused"])
        #expect(declines[0] == nil)
        #expect(declines[1]?.kind == "system")
        #expect(declines[2] == .disabled(reason: "connection refused"))
        let slots = [MachineChoice.Slots(load: 2, hasFree: false), .init(load: 0, hasFree: true), .init(load: 0, hasFree: true)]
        let (assessments, pick) = MachineChoice.choose(ms, declines: declines, slots: slots)
        #expect(pick == nil)
        #expect(assessments[0].decline == .allSlotsBusy(load: 2, maxJobs: 2))
        #expect(assessments.map(\.load) == [2, 0, 0])
        #expect(assessments.allSatisfy { !$0.isPick })
    }
}
