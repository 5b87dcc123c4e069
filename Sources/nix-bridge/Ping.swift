import ArgumentParser
import Bridge
import Foundation
import NixCore
import NixStore
import NixTransport

/// `nix-bridge ping`: like `nix store ping`, for one store or every configured machine.
struct Ping: InterruptibleCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that stores answer: Nix version, protocol, trust, round-trip time.",
        discussion: "Without --store, pings every machine of the configured builders (nix.conf 'builders', --builders, /etc/nix/machines)."
    )

    @Option(name: .customLong("store"), help: "A store URI (ssh-ng://host, unix://PATH, daemon, local?root=DIR); repeatable.")
    var stores: [String] = []
    @Flag(help: "Print JSON.")
    var json = false
    @Flag(name: .shortAndLong, help: "Also print each SSH store's effective ssh_config settings and the file and line each came from.")
    var verbose = false
    @OptionGroup var nix: NixOptions

    func run() async throws {
        let config = try nix.load()
        let targets = stores.isEmpty ? config.machineStoreURIs : stores
        if targets.isEmpty {
            throw CLIError.failed("no store given and no machines configured (use --store or --builders)")
        }
        let opener = config.opener
        let failed = config.failedBuilders()
        let reports = await withTaskGroup(of: (Int, PingReport).self) { group in
            for (i, t) in targets.enumerated() {
                group.addTask { (i, await Pinger.ping(t, opener: opener, failedBuilders: failed)) }
            }
            var out = [PingReport?](repeating: nil, count: targets.count)
            for await (i, r) in group { out[i] = r }
            return out.compactMap { $0 }
        }
        try Task.checkCancellation()
        let ssh: [[SSHSettingLine]?] = targets.map { verbose ? SSHSettingLine.lines(for: $0, opener: opener) : nil }
        if json {
            print(PingJSON.render(reports, ssh: ssh))
        } else {
            for (r, lines) in zip(reports, ssh) {
                printReport(r)
                if let lines { printSettings(r.store, lines) }
            }
        }
        if reports.contains(where: { $0.error != nil }) { throw ExitCode.failure }
    }

    private func printSettings(_ store: String, _ lines: [SSHSettingLine]) {
        print("SSH settings for \(store):")
        let width = min(48, lines.map { $0.indent.count + $0.text.count }.max() ?? 0)
        for l in lines {
            let left = l.indent + l.text
            print("  " + left + String(repeating: " ", count: max(1, width + 2 - left.count)) + l.origin)
        }
    }

    private func printReport(_ r: PingReport) {
        if let f = r.earlierFailure {
            printError("note: '\(r.store)' \(f.summary()); other commands were skipping it"
                + (r.error == nil ? ", and use it again now" : ""))
        }
        if let error = r.error {
            printError("error: \(error)")
            if let until = r.skippedUntil {
                printError("note: other commands skip '\(r.store)' until \(PingJSON.timestamp(until)) (bridge-failed-builder-ttl)")
            }
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
    /// ISO 8601 in UTC, to the second.
    static func timestamp(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    static func render(_ reports: [PingReport], ssh: [[SSHSettingLine]?] = []) -> String {
        let objects: [[String: Any]] = reports.enumerated().map { i, r in
            var o: [String: Any] = ["url": r.store, "ok": r.error == nil]
            if let v = r.nixVersion { o["version"] = v }
            if let p = r.protocolVersion { o["protocol"] = p }
            if let t = r.trusted { o["trusted"] = t }
            if let c = r.connectSeconds { o["connectSeconds"] = c }
            if let rtt = r.roundTripSeconds { o["roundTripSeconds"] = rtt }
            if let e = r.error { o["error"] = e }
            if let h = r.hint { o["hint"] = h }
            if let f = r.earlierFailure {
                o["earlierFailure"] = ["phase": f.phase, "message": f.message, "failedAt": timestamp(f.failedAt),
                                       "retryAt": timestamp(f.retryAt)]
            }
            if let until = r.skippedUntil { o["skippedUntil"] = timestamp(until) }
            if i < ssh.count, let lines = ssh[i] {
                o["sshSettings"] = lines.map { ["hop": $0.hop, "setting": $0.text, "origin": $0.origin] as [String: Any] }
            }
            return o
        }
        return JSONOutput.array(objects)
    }
}

/// One line of `ping -v`'s settings list: `keyword value` and where it came from.
struct SSHSettingLine {
    var hop: Int
    var text: String
    var origin: String
    var indent: String { String(repeating: "  ", count: hop) }

    /// The effective settings of an ssh-ng store, then those of each ProxyJump hop; nil for
    /// other stores.
    static func lines(for store: String, opener: StoreOpener) -> [SSHSettingLine]? {
        guard let uri = try? StoreURI(parsing: store), uri.scheme == .sshNG else { return nil }
        var lines: [SSHSettingLine] = []
        var options: SSHOptions? = opener.sshOptions(uri)
        var hop = 0
        let choice = (try? opener.sshClient(uri)) ?? (client: SSHTransport.libssh2, reason: "")
        let openssh = choice.client == .openssh
        lines.append(SSHSettingLine(hop: 0, text: openssh ? "transport openssh (\(choice.reason))" : "transport libssh2 \(SSHLibrary.version)",
                                    origin: openssh ? "ssh-transport" : "loaded library"))
        if !openssh, let nars = try? opener.narSSHClient(uri) {
            lines.append(SSHSettingLine(hop: 0, text: "NARs over \(nars.client) (\(nars.reason))", origin: "ssh-transport"))
        }
        if openssh {
            let client = opener.openSSHClient(uri)
            let text = client.controlPath.map { "controlpath \($0) (nix-bridge's ControlMaster, persist \(client.master?.persist ?? 0) s)" }
                ?? "no ControlMaster of nix-bridge's (ssh_config or NIX_SSHOPTS set ControlMaster/ControlPath)"
            lines.append(SSHSettingLine(hop: 0, text: text, origin: "openssh transport"))
        }
        if let key = uri[parameter: "ssh-key"] ?? opener.identityFiles[uri.authority] {
            lines.append(SSHSettingLine(hop: 0, text: "identityfile \(key) (only this key)", origin: "machines file"))
        }
        if uri[parameter: "base64-ssh-public-host-key"] ?? opener.pinnedHostKeys[uri.authority] != nil {
            lines.append(SSHSettingLine(hop: 0, text: "host key pinned (known_hosts not read)", origin: "machines file"))
        }
        while let o = options {
            if hop > 0 { lines.append(SSHSettingLine(hop: hop - 1, text: "via ProxyJump host \(o.host):", origin: "")) }
            lines.append(SSHSettingLine(hop: hop, text: "hostname \(o.hostName) port \(o.port) user \(o.user)", origin: "effective"))
            for s in o.settings {
                let ignored = openssh || SSHOptions.honouredKeywords.contains(s.keyword) ? "" : " (no effect with libssh2)"
                lines.append(SSHSettingLine(hop: hop, text: "\(s.keyword) \(s.arguments.joined(separator: " "))\(ignored)", origin: s.origin))
            }
            for w in o.warnings + o.knownHostsProblems.map({ "known_hosts line skipped: \($0)" }) {
                lines.append(SSHSettingLine(hop: hop, text: "warning: \(w)", origin: ""))
            }
            options = o.jumpHost.first
            hop += 1
        }
        return lines
    }
}
