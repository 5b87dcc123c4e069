import NixCore

/// Nix 2.8's build-remote choice without the locks: which machine takes a build, given what
/// every machine's slots look like right now. `Scheduler` probes the slot locks (under the
/// main lock) and hands what it found here.
enum MachineChoice {
    /// One machine's slots as probed: how many are locked, and whether one is free.
    struct Slots: Sendable, Hashable {
        var load: Int
        var hasFree: Bool
    }

    /// Why each machine can never take `needs` in this run, known before its slots are
    /// probed (so no slot of such a machine is held).
    static func declines(_ machines: [Machine], _ needs: BuildNeeds, disabled: [Machine: String]) -> [Decline?] {
        machines.map { m in disabled[m].map { .disabled(reason: $0) } ?? staticDecline(m, needs) }
    }

    /// Every machine's answer, in file order, and the index of the one that takes the build:
    /// among those that accept and have a free slot, the lowest load / speed factor (ties:
    /// the faster, then the less loaded, then the earlier in the file).
    static func choose(_ machines: [Machine], declines: [Decline?], slots: [Slots]) -> (assessments: [MachineAssessment], pick: Int?) {
        var assessments: [MachineAssessment] = []
        var pick: Int?
        for (i, m) in machines.enumerated() {
            var decline = declines[i]
            if decline == nil && !slots[i].hasFree {
                decline = .allSlotsBusy(load: slots[i].load, maxJobs: Int(m.maxJobs))
            }
            assessments.append(MachineAssessment(machine: m, decline: decline, load: slots[i].load, isPick: false))
            guard decline == nil else { continue }
            if let p = pick, !isBetter(load: slots[i].load, speed: m.speedFactor,
                                       than: slots[p].load, speed: machines[p].speedFactor) { continue }
            pick = i
        }
        if let pick { assessments[pick].isPick = true }
        return (assessments, pick)
    }

    /// build-remote's comparison: lower load per speed, then faster, then less loaded.
    static func isBetter(load: Int, speed: Double, than bestLoad: Int, speed bestSpeed: Double) -> Bool {
        let a = Double(load) / speed, b = Double(bestLoad) / bestSpeed
        if a != b { return a < b }
        if speed != bestSpeed { return speed > bestSpeed }
        return load < bestLoad
    }
}
