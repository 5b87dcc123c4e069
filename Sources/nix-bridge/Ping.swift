import ArgumentParser
import Bridge
import Foundation

/// `nix-bridge ping`: like `nix store ping`, for one store or every configured machine.
struct Ping: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that stores answer: Nix version, protocol, trust, round-trip time.",
        discussion: "Without --store, pings every machine of the configured builders (nix.conf 'builders', --builders, /etc/nix/machines)."
    )

    @Option(name: .customLong("store"), help: "A store URI (ssh-ng://host, unix://PATH, daemon, local?root=DIR); repeatable.")
    var stores: [String] = []
    @Flag(help: "Print JSON.")
    var json = false
    @OptionGroup var nix: NixOptions

    func run() async throws {
        let config = try nix.load()
        let targets = stores.isEmpty ? config.machineStoreURIs : stores
        if targets.isEmpty {
            printError("error: no store given and no machines configured (use --store or --builders)")
            throw ExitCode.failure
        }
        let opener = config.opener
        let reports = await withTaskGroup(of: (Int, PingReport).self) { group in
            for (i, t) in targets.enumerated() {
                group.addTask { (i, await Pinger.ping(t, opener: opener)) }
            }
            var out = [PingReport?](repeating: nil, count: targets.count)
            for await (i, r) in group { out[i] = r }
            return out.compactMap { $0 }
        }
        if json {
            print(PingJSON.render(reports))
        } else {
            for r in reports { printReport(r) }
        }
        if reports.contains(where: { $0.error != nil }) { throw ExitCode.failure }
    }

    private func printReport(_ r: PingReport) {
        if let error = r.error {
            printError("error: \(error)")
            if let hint = r.hint { printError("hint: \(hint)") }
            return
        }
        print("Store URL: \(r.store)")
        if let v = r.nixVersion { print("Version: \(v)") }
        if let p = r.protocolVersion { print("Protocol: \(p)") }
        if let t = r.trusted { print("Trusted: \(t ? 1 : 0)") }
        if let c = r.connectSeconds { print(String(format: "Connect: %.1f ms", c * 1000)) }
        if let rtt = r.roundTripSeconds { print(String(format: "Round trip: %.3f ms", rtt * 1000)) }
        if let hint = r.hint { printError("warning: \(hint)") }
    }
}

enum PingJSON {
    static func render(_ reports: [PingReport]) -> String {
        let objects: [[String: Any]] = reports.map { r in
            var o: [String: Any] = ["url": r.store, "ok": r.error == nil]
            if let v = r.nixVersion { o["version"] = v }
            if let p = r.protocolVersion { o["protocol"] = p }
            if let t = r.trusted { o["trusted"] = t }
            if let c = r.connectSeconds { o["connectSeconds"] = c }
            if let rtt = r.roundTripSeconds { o["roundTripSeconds"] = rtt }
            if let e = r.error { o["error"] = e }
            if let h = r.hint { o["hint"] = h }
            return o
        }
        return JSONOutput.array(objects)
    }
}
