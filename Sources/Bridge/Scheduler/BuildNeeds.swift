import NixCore

/// What a derivation asks of the machine that builds it: what Nix's build hook is told
/// (`neededSystem`, `requiredFeatures`).
public struct BuildNeeds: Sendable, Hashable {
    /// The derivation's `system` (`builtin` runs on any machine).
    public var system: String
    /// `requiredSystemFeatures`, plus `ca-derivations` for floating outputs, as Nix adds it.
    public var requiredFeatures: Set<String>

    public init(system: String, requiredFeatures: Set<String> = []) {
        self.system = system
        self.requiredFeatures = requiredFeatures
    }

    /// The needs of `drv`: its system and required features (which may be in `__json`).
    public init(_ drv: Derivation) throws(DerivationError) {
        self.init(system: drv.system, requiredFeatures: try drv.requiredSystemFeatures())
    }

    /// The features in Nix's order (a `std::set<std::string>`: byte order).
    var sortedFeatures: [String] { requiredFeatures.sortedByBytes() }
}

/// Why a machine will not take a build (now, or for this run). The cases are checked in
/// the order of Nix's build hook: disabled, system, features, mandatory features, slots.
public enum Decline: Sendable, Hashable, CustomStringConvertible {
    /// The machine does not build for the derivation's system.
    case system(needed: String, supported: [String])
    /// Required features the machine neither supports nor has as mandatory (byte order).
    case missingFeatures([String])
    /// Mandatory features of the machine the derivation does not require (byte order).
    case mandatoryNotRequired([String])
    /// Every slot is locked by a build (of this or another process); `maxJobs` 0 never frees.
    case allSlotsBusy(load: Int, maxJobs: Int)
    /// The machine failed to connect earlier in this run.
    case disabled(reason: String)

    /// True when the machine can never take this build in this run (not merely busy).
    public var isPermanent: Bool {
        if case let .allSlotsBusy(_, maxJobs) = self { return maxJobs == 0 }
        return true
    }

    /// A short name for JSON and tests.
    public var kind: String {
        switch self {
        case .system: return "system"
        case .missingFeatures: return "missingFeatures"
        case .mandatoryNotRequired: return "mandatoryNotRequired"
        case .allSlotsBusy: return "allSlotsBusy"
        case .disabled: return "disabled"
        }
    }

    public var description: String {
        switch self {
        case let .system(needed, supported):
            return "does not build for system '\(needed)' (only \(supported.isEmpty ? "none" : supported.joined(separator: ", ")))"
        case let .missingFeatures(f):
            return "missing required feature\(f.count == 1 ? "" : "s") \(f.map { "'\($0)'" }.joined(separator: ", "))"
        case let .mandatoryNotRequired(f):
            return "mandatory feature\(f.count == 1 ? "" : "s") \(f.map { "'\($0)'" }.joined(separator: ", ")) not required"
        case let .allSlotsBusy(load, maxJobs):
            return maxJobs == 0 ? "max jobs is 0" : "all slots busy (\(load)/\(maxJobs))"
        case let .disabled(reason):
            return "disabled: \(reason)"
        }
    }
}

/// One machine as the scheduler sees it for one derivation.
public struct MachineAssessment: Sendable, Hashable {
    public var machine: Machine
    /// Why it declines, or nil when it would accept.
    public var decline: Decline?
    /// Slots currently locked (by any process sharing the state directory).
    public var load: Int
    /// True for the machine `acquire` would pick right now.
    public var isPick: Bool

    public init(machine: Machine, decline: Decline?, load: Int, isPick: Bool) {
        self.machine = machine
        self.decline = decline
        self.load = load
        self.isPick = isPick
    }
}

/// Nix's fixed rules, without slots: why `machine` can never take `needs` (nil: it can).
func staticDecline(_ machine: Machine, _ needs: BuildNeeds) -> Decline? {
    guard machine.systemSupported(needs.system) else {
        return .system(needed: needs.system, supported: machine.systemTypes)
    }
    let missing = needs.requiredFeatures.filter { !machine.allSupported([$0]) }
    guard missing.isEmpty else { return .missingFeatures(missing.sortedByBytes()) }
    let unasked = machine.mandatoryFeatures.subtracting(needs.requiredFeatures)
    guard unasked.isEmpty else { return .mandatoryNotRequired(unasked.sortedByBytes()) }
    if machine.maxJobs == 0 { return .allSlotsBusy(load: 0, maxJobs: 0) }
    return nil
}

extension Collection<String> {
    /// Sorted as C++ `std::set<std::string>` orders them (bytes, not Unicode).
    func sortedByBytes() -> [String] { sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) } }
}
