import ArgumentParser
import Bridge
import Foundation
import NixCore

/// `nix-bridge explain`: which machine would build each derivation, and why the others would not.
struct ExplainCommand: ParsableCommand, PathListCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show which remote machine would build each derivation, and why others decline.",
        discussion: """
            Applies Nix's build-hook rules to every configured machine: the system (or 'builtin'), \
            the derivation's requiredSystemFeatures against the machine's supported and mandatory \
            features, and free slots. Load is read from the slot locks that running nix-bridge \
            builds hold in $NIX_BRIDGE_STATE_DIR/current-load (default \
            $XDG_STATE_HOME/nix-bridge/current-load, else ~/.local/state/nix-bridge/current-load). \
            Exits with status 1 and Nix's 'nix-build -j0' error when no machine can build a derivation.
            """
    )

    @Flag(help: "Print JSON.")
    var json = false
    @Argument(help: "Derivations: /nix/store/...drv, DRV^out or DRV^*.")
    var derivations: [String]

    var pathArguments: [String] { get { derivations } set { derivations = newValue } }
    static let pathArgumentName = "<derivations> ..."
    @OptionGroup var nix: NixOptions

    func run() throws {
        let config = try nix.load()
        let drvs = try Targets.derivations(derivations, storeDir: config.storeDir, readFile: Files.readDerivation)
        let slots = Scheduler.defaultStateDirectory()
        let scheduler = Scheduler(machines: config.machines, stateDirectory: slots,
                                  failedBuilders: config.failedBuilders(besideSlotLocks: slots))
        var reports: [ExplainReport] = []
        for named in drvs {
            let needs = try BuildNeeds(named.derivation)
            let assessments = try scheduler.assess(needs)
            reports.append(ExplainReport(drvPath: named.path, needs: needs, assessments: assessments))
        }
        let storeDir = config.storeDir
        if json {
            print(ExplainReport.json(reports, storeDir: storeDir))
        } else {
            for r in reports { print(r.text(storeDir: storeDir)) }
        }
        let unbuildable = reports.filter(\.neverFits)
        guard !unbuildable.isEmpty else { return }
        for r in unbuildable {
            if let hint = scheduler.noMachineFound(for: r.needs, drvPath: r.drvPath).hint { printError(hint) }
        }
        printError(NoMachineFound.errorLine(scheduler.noMachineFound(for: unbuildable[0].needs, drvPath: nil).message))
        throw ExitCode.failure
    }
}

/// One derivation's verdicts, for printing.
struct ExplainReport {
    var drvPath: StorePath
    var needs: BuildNeeds
    var assessments: [MachineAssessment]

    /// No machine can ever take it (busy machines still count as fitting).
    var neverFits: Bool { assessments.allSatisfy { $0.decline?.isPermanent ?? false } }

    func text(storeDir: StoreDirectory) -> String {
        var lines = [storeDir.print(drvPath),
                     "  needs: system \(needs.system), features [\(sortedFeatures(needs.requiredFeatures))]"]
        if assessments.isEmpty { lines.append("  no machines configured") }
        for a in assessments {
            let m = a.machine
            let verdict = a.decline.map { "declines: \($0)" } ?? "accepts"
            let mark = a.isPick ? "* " : "  "
            lines.append("\(mark)\(m.storeUri): \(verdict); load \(a.load)/\(m.maxJobs), speed factor \(speed(m.speedFactor))"
                + (a.isPick ? " (picked)" : ""))
        }
        if !assessments.isEmpty && !assessments.contains(where: \.isPick) {
            lines.append(neverFits ? "  no machine can build it" : "  every eligible machine is busy: a build would wait")
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ reports: [ExplainReport], storeDir: StoreDirectory) -> String {
        let objects: [[String: Any]] = reports.map { r in
            let machines: [[String: Any]] = r.assessments.map { a in
                let m = a.machine
                var o: [String: Any] = [
                    "storeUri": m.storeUri, "systems": m.systemTypes, "maxJobs": Int(m.maxJobs),
                    "speedFactor": m.speedFactor, "supportedFeatures": m.supportedFeatures.sorted(),
                    "mandatoryFeatures": m.mandatoryFeatures.sorted(), "load": a.load,
                    "accepts": a.decline == nil, "picked": a.isPick,
                ]
                if let d = a.decline { o["decline"] = ["kind": d.kind, "reason": d.description] }
                return o
            }
            var o: [String: Any] = [
                "derivation": storeDir.print(r.drvPath), "system": r.needs.system,
                "requiredFeatures": r.needs.requiredFeatures.sorted(), "machines": machines,
                "fits": !r.neverFits,
            ]
            o["picked"] = r.assessments.first(where: \.isPick)?.machine.storeUri ?? NSNull()
            return o
        }
        return JSONOutput.array(objects)
    }

    private func sortedFeatures(_ f: Set<String>) -> String { f.sorted().joined(separator: ", ") }

    private func speed(_ s: Double) -> String {
        s == s.rounded() && abs(s) < 1e15 ? String(Int64(s)) : String(s)
    }
}
