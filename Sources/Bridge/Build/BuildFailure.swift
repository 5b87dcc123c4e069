import NixCore
import NixWire

/// Why one derivation did not build, in Nix's words, with what it means for the exit status.
public struct BuildFailure: Error, Sendable, CustomStringConvertible {
    /// The kinds Nix's worker counts for its exit status (`Worker::exitStatus`).
    public enum Kind: Sendable, Hashable {
        /// The builder failed (BuildResult `PermanentFailure`): exit bit 0x04.
        case permanent
        /// `TimedOut`: 0x04 | 0x01.
        case timedOut
        /// A fixed-output derivation produced another hash: 0x04 | 0x02.
        case hashMismatch
        /// `--check` found a different output (`NotDeterministic`): 0x08.
        case notDeterministic
        /// Anything else (a refused input, a transfer that failed...): no bit, exit 1.
        case other
        /// Some of its inputs failed ("N dependencies of derivation '...' failed to build").
        case dependencyFailed
    }

    /// The derivation, printed (`/nix/store/...drv`).
    public var drvPath: String
    public var kind: Kind
    public var message: String
    /// The whole build stops with this message (Nix's worker-level errors, such as no
    /// machine for a derivation with `max-jobs` 0).
    public var abortsBuild: Bool

    public init(drvPath: String, kind: Kind, message: String, abortsBuild: Bool = false) {
        self.drvPath = drvPath
        self.kind = kind
        self.message = message
        self.abortsBuild = abortsBuild
    }

    public var description: String { message }

    /// The kind a failed BuildResult stands for. Nix sets the hash-mismatch flag only where the
    /// output check fails, which the remote side reports in its message.
    static func kind(of result: BuildResult) -> Kind {
        switch result.status {
        case .timedOut: return .timedOut
        case .notDeterministic: return .notDeterministic
        case .permanentFailure: return .permanent
        case .outputRejected where result.errorMsg.contains("hash mismatch"): return .hashMismatch
        case .dependencyFailed: return .dependencyFailed
        default: return result.errorMsg.contains("hash mismatch in fixed-output derivation") ? .hashMismatch : .other
        }
    }
}

/// The error a whole build ends with, as Nix's `Store::buildPaths` throws it: the one failed
/// target's own error, or "build of ... failed" when several failed; `exitStatus` is the
/// worker's (100 + bits, or 1).
public struct BuildError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var exitStatus: Int32
    /// Every derivation that failed (targets and inputs), in the order they failed.
    public var failures: [BuildFailure]
    public init(message: String, exitStatus: Int32, failures: [BuildFailure]) {
        self.message = message
        self.exitStatus = exitStatus
        self.failures = failures
    }

    public var description: String { message }

    /// Nix's `Worker::exitStatus`: 0x60 plus 0x04 (build failure), 0x01 (timed out), 0x02
    /// (hash mismatch), 0x08 (not deterministic); 1 when none applies.
    public static func exitStatus(_ kinds: some Sequence<BuildFailure.Kind>) -> Int32 {
        var permanent = false, timedOut = false, hashMismatch = false, check = false
        for k in kinds {
            switch k {
            case .permanent: permanent = true
            case .timedOut: timedOut = true
            case .hashMismatch: hashMismatch = true
            case .notDeterministic: check = true
            case .other, .dependencyFailed: break
            }
        }
        var mask: Int32 = 0
        if permanent || timedOut || hashMismatch { mask |= 0x04 }
        if timedOut { mask |= 0x01 }
        if hashMismatch { mask |= 0x02 }
        if check { mask |= 0x08 }
        return mask == 0 ? 1 : mask | 0x60
    }
}
