import NixCore

/// `nix-bridge check`: the NixOS wiki's "remote builders as substituters" set-up, step by
/// step for every machine, from what `FleetStatus` gathered and the local settings. Each
/// failed step says what to change, in the words of Nix's documentation.
public enum SetupCheck {
    public struct Step: Sendable, Hashable {
        public var name: String
        public var passed: Bool
        /// What was found (shown after PASS/FAIL).
        public var detail: String
        /// What to change, when it failed.
        public var fix: String?
    }

    public struct MachineSteps: Sendable {
        public var storeUri: String
        public var steps: [Step]
    }

    /// Every machine's steps, in the wiki's order; a step that cannot be judged because an
    /// earlier one failed is left out.
    public static func check(_ report: FleetStatus.Report, settings: Settings) -> [MachineSteps] {
        report.machines.map { MachineSteps(storeUri: $0.machine.storeUri, steps: steps($0, settings: settings)) }
    }

    public static func allPassed(_ results: [MachineSteps]) -> Bool {
        results.allSatisfy { $0.steps.allSatisfy(\.passed) }
    }

    static func steps(_ m: MachineStatus, settings: Settings) -> [Step] {
        let uri = m.machine.storeUri
        var out: [Step] = []
        let host = m.machine.authority ?? uri
        let pinned = m.machine.sshPublicHostKey != nil
        out.append(Step(name: "host key pinned", passed: pinned,
                        detail: pinned ? "in the machines file" : "no host key in the machines file (8th field)",
                        fix: pinned ? nil : "put the builder's host public key, base64-encoded, in the 8th field of its machines line (the output of 'ssh-keyscan \(host)' piped through 'base64 -w0'), since the Nix daemon connects as root with root's known_hosts"))
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
        out.append(Step(name: "a signing key in secret-key-files", passed: signs,
                        detail: signs ? "its paths are signed by \(recent.keys.map { "'\($0.name)'" }.joined(separator: ", "))"
                                      : recent.inputAddressed == 0 ? "cannot tell: none of its \(recent.sampled) most recent paths is input-addressed (built there)"
                                      : "none of its \(recent.inputAddressed) recent input-addressed paths is signed",
                        fix: signs ? nil : "generate a key pair with 'nix-store --generate-binary-cache-key NAME-1 /etc/nix/secret-key /etc/nix/public-key' on the builder and add 'secret-key-files = /etc/nix/secret-key' to its nix.conf"))
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
