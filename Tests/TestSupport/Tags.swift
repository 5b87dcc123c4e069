import Foundation
import Testing

/// What a suite needs besides the Swift toolchain. The pure unit tests have none of these
/// tags and run anywhere; a suite with one runs where that peer is installed and skips,
/// saying so, where it is not. Under CI (`CI=true`) nothing is skipped: a missing peer
/// fails the suites that need it (see `TestSupport.peersRequired`).
extension Tag {
    /// The real Nix CLI or daemon (Debian's nix-bin).
    @Tag public static var realNix: Self
    /// Real OpenSSH `sshd` builders on loopback (`Fleet`), which needs root.
    @Tag public static var realSSHD: Self
    /// The built `nix-bridge` executable, run as a user runs it.
    @Tag public static var builtCLI: Self
    /// Upstream Nix's golden vectors (../shared/vectors/nix-upstream).
    @Tag public static var upstreamVectors: Self
    /// Other programs of the host: OpenSSH's client and agent, curl, flock, sqlite3.
    @Tag public static var hostTools: Self
}

extension TestSupport {
    /// Under CI (`CI=true`) every peer is required: suites that need one run and fail when it
    /// is missing, instead of skipping.
    public static var peersRequired: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether the real-Nix suites run.
    public static var hasNix: Bool { PeerFixtures.hasNix || peersRequired }

    /// Whether the sshd fleet suites run (root, sshd and ssh-keygen).
    public static var hasFleet: Bool { Fleet.canRun || peersRequired }

    /// Whether a suite needing the host program `name` runs.
    public static func has(_ name: String) -> Bool { which(name) != nil || peersRequired }
}
