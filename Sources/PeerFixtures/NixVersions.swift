import Foundation

/// Nix 2.26 beside the host's Nix 2.8: a Debian 13 root made by scripts/test
/// (`scripts/debian-root trixie`), named by `NIX_BRIDGE_TRIXIE_ROOT`, and its libssh2 1.11
/// (`NIX_BRIDGE_LIBSSH2_DIR`, a folder holding only `libssh2.so.1`). Programs run inside the
/// root through scripts/in-root: own mount and PID namespaces, the given folders bound in at
/// the same paths, and everything it started ends with it.
public enum NixVersions {
    /// The Debian 13 root with Nix 2.26, or nil when there is none.
    public static var nix226Root: String? {
        guard let root = ProcessInfo.processInfo.environment["NIX_BRIDGE_TRIXIE_ROOT"],
              FileManager.default.isExecutableFile(atPath: root + "/usr/bin/nix") else { return nil }
        return root
    }

    /// A folder holding libssh2 1.11's `libssh2.so.1`, or nil.
    public static var libssh2_111Dir: String? {
        guard let dir = ProcessInfo.processInfo.environment["NIX_BRIDGE_LIBSSH2_DIR"],
              FileManager.default.fileExists(atPath: dir + "/libssh2.so.1") else { return nil }
        return dir
    }

    /// Why the Nix 2.26 tests cannot run, or nil when they can. Under CI a missing root is a
    /// failure, unless scripts/test found the Debian mirror unreachable and said so.
    public static var nix226Unavailable: String? {
        if nix226Root != nil { return nil }
        let env = ProcessInfo.processInfo.environment
        if let reason = env["NIX_BRIDGE_TRIXIE_UNAVAILABLE"] { return reason }
        return "no Debian 13 root with Nix 2.26 (scripts/test makes one and sets NIX_BRIDGE_TRIXIE_ROOT)"
    }

    /// Whether a missing Nix 2.26 root must fail the run rather than skip: under CI, unless the
    /// mirror could not be reached.
    public static var nix226Required: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["CI"] == "true" && env["NIX_BRIDGE_TRIXIE_UNAVAILABLE"] == nil
    }

    /// The command line that runs `command` inside `root` with `binds` bound in.
    public static func inRoot(_ root: String, binds: [String], _ command: [String]) -> [String] {
        [PeerFixtures.projectRoot.appendingPathComponent("scripts/in-root").path, root]
            + binds.flatMap { ["--bind", $0] } + ["--"] + command
    }

    /// Runs `command` inside `root` (see `inRoot`), with `environment` added.
    @discardableResult
    public static func run(in root: String, binds: [String], _ command: [String], input: Data? = nil,
                           environment: [String: String] = [:], check: Bool = true) throws -> PeerFixtures.Output {
        try PeerFixtures.run(inRoot(root, binds: binds, ["env"] + environment.map { "\($0.key)=\($0.value)" } + command),
                            input: input, check: check)
    }
}
