import NixCore

/// No machine can take a build: what Nix 2.8 prints for `nix-build -j0` then, the build
/// hook's hint (build-remote.cc) followed by the worker's error (worker.cc).
public struct NoMachineFound: Error, Sendable, Hashable, CustomStringConvertible {
    /// The derivation (nil prints `<unknown>`, as Nix does).
    public var drvPath: StorePath?
    public var needs: BuildNeeds
    /// All configured machines, in file order.
    public var machines: [Machine]

    public init(drvPath: StorePath?, needs: BuildNeeds, machines: [Machine]) {
        self.drvPath = drvPath
        self.needs = needs
        self.machines = machines
    }

    /// The hook's warning: the derivation, what it needs, and the table of machines. Nil with
    /// no machines at all (Nix's hook then declines permanently without a word).
    public var hint: String? {
        guard !machines.isEmpty else { return nil }
        var lines = [
            "Failed to find a machine for remote build!",
            "derivation: \(drvPath?.baseName ?? "<unknown>")",
            "required (system, features): (\(needs.system), \(needs.sortedFeatures.joined(separator: ", ")))",
            "\(machines.count) available machines:",
            "(systems, maxjobs, supportedFeatures, mandatoryFeatures)",
        ]
        for m in machines {
            lines.append("(\(m.systemTypes.joined(separator: ", ")), \(m.maxJobs), "
                + "\(m.supportedFeatures.sortedByBytes().joined(separator: ", ")), "
                + "\(m.mandatoryFeatures.sortedByBytes().joined(separator: ", ")))")
        }
        return lines.joined(separator: "\n")
    }

    /// The worker's error message (without `error: `).
    public var message: String {
        Self.message(haveMachines: !machines.isEmpty)
    }

    static func message(haveMachines: Bool) -> String {
        (haveMachines
            ? "unable to start any build; remote machines may not have all required system features."
            : "unable to start any build; either increase '--max-jobs' or enable remote builds.")
            + "\nhttps://nixos.org/manual/nix/stable/advanced-topics/distributed-builds.html"
    }

    /// Exactly what `nix-build -j0` writes after "these derivations will be built": the hint,
    /// then `error: ` and the message, its later lines indented as Nix indents them.
    public var description: String {
        (hint.map { $0 + "\n" } ?? "") + Self.errorLine(message)
    }

    /// `error: MESSAGE` with continuation lines indented by 7 spaces (Nix's `showErrorInfo`).
    public static func errorLine(_ message: String) -> String {
        "error: " + message.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n       ")
    }
}
