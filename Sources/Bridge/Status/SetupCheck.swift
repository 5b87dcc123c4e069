import NixCore

/// `nix-bridge check`: the NixOS wiki's "remote builders as substituters" set-up, step by
/// step for every machine, from what `FleetStatus` gathered and the local settings. Each
/// failed step says what to change, in the words of Nix's documentation.
public enum SetupCheck {
    public struct Step: Sendable, Hashable {
        /// SKIP: what the builder offers cannot tell (not a failure).
        public enum Outcome: String, Sendable, Hashable { case pass = "PASS", fail = "FAIL", skip = "SKIP" }

        public var name: String
        public var outcome: Outcome
        /// What was found (shown after PASS/FAIL/SKIP).
        public var detail: String
        /// What to change, when it failed.
        public var fix: String?

        public var failed: Bool { outcome == .fail }

        init(name: String, passed: Bool, detail: String, fix: String?) {
            self.init(name: name, outcome: passed ? .pass : .fail, detail: detail, fix: fix)
        }

        init(name: String, outcome: Outcome, detail: String, fix: String?) {
            (self.name, self.outcome, self.detail, self.fix) = (name, outcome, detail, fix)
        }
    }

    public struct MachineSteps: Sendable {
        public var storeUri: String
        public var steps: [Step]
    }

    /// Where known_hosts records a builder's host key: the name ssh looks it up under and the
    /// "file:line" of each entry (none when it is not there).
    public typealias KnownHostsLookup = @Sendable (_ storeUri: String) -> (name: String, entries: [String])?

    /// Every machine's steps, in the wiki's order; a step that cannot be judged because an
    /// earlier one failed is left out.
    public static func check(_ report: FleetStatus.Report, settings: Settings,
                             knownHosts: KnownHostsLookup = { _ in nil }) -> [MachineSteps] {
        report.machines.map {
            MachineSteps(storeUri: $0.machine.storeUri,
                         steps: steps($0, settings: settings, knownHosts: knownHosts($0.machine.storeUri)))
        }
    }

    public static func allPassed(_ results: [MachineSteps]) -> Bool {
        !results.contains { $0.steps.contains(where: \.failed) }
    }

    /// A key in the machines file, else one in known_hosts: either way the host is checked
    /// (Nix passes the machines-file key to ssh as a known_hosts entry; without it ssh reads
    /// known_hosts, and a host missing there is refused in batch mode).
    static func hostKeyStep(_ m: MachineStatus, knownHosts: (name: String, entries: [String])?) -> Step {
        let name = "host key pinned"
        if m.machine.sshPublicHostKey != nil {
            return Step(name: name, passed: true, detail: "in the machines file", fix: nil)
        }
        if let knownHosts, !knownHosts.entries.isEmpty {
            return Step(name: name, passed: true,
                        detail: "in known_hosts as '\(knownHosts.name)' (\(knownHosts.entries.joined(separator: ", ")))", fix: nil)
        }
        let host = m.machine.authority ?? m.machine.storeUri
        let lookedUp = knownHosts.map { ", nor in known_hosts as '\($0.name)'" } ?? ""
        return Step(name: name, passed: false, detail: "no host key in the machines file (8th field)\(lookedUp)",
                    fix: "put the builder's host public key, base64-encoded, in the 8th field of its machines line (the output of 'ssh-keyscan \(host)' piped through 'base64 -w0'), or add it to root's known_hosts, since the Nix daemon connects as root with root's known_hosts")
    }

    static func steps(_ m: MachineStatus, settings: Settings, knownHosts: (name: String, entries: [String])? = nil) -> [Step] {
        let uri = m.machine.storeUri
        var out: [Step] = []
        let host = m.machine.authority ?? uri
        out.append(hostKeyStep(m, knownHosts: knownHosts))
        let local = substituterLine(uri, settings: settings)
        out.append(local)
        if let error = m.ping.error {
            let daemonMissing = m.ping.hint?.contains("not on the PATH") == true
            let loggedIn = daemonMissing || m.ping.hint?.contains("printed something before") == true
                || m.ping.hint?.contains("remote command exited") == true
            out.append(Step(name: "ssh login", passed: loggedIn, detail: loggedIn ? "logged in" : error,
                            fix: loggedIn ? nil : m.ping.hint ?? "check that 'ssh \(host)' logs in without a prompt as the user that runs the Nix daemon"))
            if loggedIn {
                out.append(Step(name: "nix-daemon on the PATH of a non-interactive shell", passed: false, detail: error,
                                fix: m.ping.hint))
            }
            return out
        }
        out.append(Step(name: "ssh login", passed: true, detail: "logged in", fix: nil))
        out.append(Step(name: "nix-daemon on the PATH of a non-interactive shell", passed: true,
                        detail: "Nix \(m.ping.nixVersion ?? "?"), protocol \(m.ping.protocolVersion ?? "?")", fix: nil))
        let trusted = m.ping.trusted ?? false
        out.append(Step(name: "trusted user", passed: trusted,
                        detail: trusted ? "the builder trusts us" : "the remote user is not trusted",
                        fix: trusted ? nil : "add the remote user to 'trusted-users' in the builder's nix.conf"))
        guard let recent = m.recent else {
            out.append(Step(name: "a signing key in secret-key-files", passed: false,
                            detail: "cannot read its paths: \(m.sampleError ?? "unknown")", fix: nil))
            return out
        }
        let signs = !recent.keys.isEmpty
        if !signs && recent.inputAddressed == 0 {
            // Content-addressed paths need no signature: nothing it holds shows a key or its absence.
            out.append(Step(name: "a signing key in secret-key-files", outcome: .skip,
                            detail: "cannot tell: none of its \(recent.sampled) most recent paths is input-addressed (built there)", fix: nil))
        } else {
            out.append(Step(name: "a signing key in secret-key-files", passed: signs,
                            detail: signs ? "its paths are signed by \(recent.keys.map { "'\($0.name)'" }.joined(separator: ", "))"
                                          : "none of its \(recent.inputAddressed) recent input-addressed paths is signed",
                            fix: signs ? nil : "generate a key pair with 'nix-store --generate-binary-cache-key NAME-1 /etc/nix/secret-key /etc/nix/public-key' on the builder and add 'secret-key-files = /etc/nix/secret-key' to its nix.conf"))
        }
        out.append(Step(name: "recent paths signed", passed: recent.unsigned == 0,
                        detail: "\(recent.unsigned) of its \(recent.sampled) most recent paths are unsigned",
                        fix: recent.unsigned == 0 ? nil : "sign what it built before the key was set: 'nix store sign --key-file /etc/nix/secret-key --all' on the builder"))
        let untrusted = recent.keys.filter { !$0.trusted }
        if signs {
            out.append(Step(name: "its key in the local trusted-public-keys", passed: untrusted.isEmpty,
                            detail: untrusted.isEmpty ? "\(recent.keys.map { "'\($0.name)'" }.joined(separator: ", ")) trusted"
                                                      : "\(untrusted.map { "'\($0.name)'" }.joined(separator: ", ")) not in trusted-public-keys",
                            fix: untrusted.isEmpty ? nil : "add the builder's public key ('nix key convert-secret-to-public < /etc/nix/secret-key' on the builder) to 'trusted-public-keys' in the local nix.conf"))
        }
        return out
    }

    /// `user@host` of an `ssh://` or `ssh-ng://` URI (both reach the same store).
    static func sshHost(_ uri: String) -> String? {
        let u = Machine.normalizedStoreUri(uri)
        for scheme in ["ssh-ng://", "ssh://"] where u.hasPrefix(scheme) {
            return String(u.dropFirst(scheme.count).prefix { $0 != "?" && $0 != "/" })
        }
        return nil
    }

    /// Whether the local `substituters` names the builder (or a nix-bridge in front of it).
    static func substituterLine(_ uri: String, settings: Settings) -> Step {
        let listed = settings.substituters.contains { s in
            sshHost(s) != nil && sshHost(s) == sshHost(uri) || s.contains("remote-program=") && s.contains("nix-bridge")
        }
        return Step(name: "local substituters line", passed: listed,
                    detail: listed ? "'substituters' names it" : "'substituters' does not name '\(uri)'",
                    fix: listed ? nil : "add '\(uri)' to 'substituters' in the local nix.conf (or 'extra-substituters'; a user who is not trusted also needs it in 'trusted-substituters')")
    }
}
