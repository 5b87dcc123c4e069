import NixCore

/// What a build is doing, for logs and progress. Machines are named by their store URI;
/// `nil` means the local store builds it.
public enum BuildEvent: Sendable {
    /// The plan: derivations to build, derivations whose outputs are fetched.
    case planned(build: [StorePath], fetch: [StorePath])
    /// Fetching outputs from the fleet (the substituter's own events).
    case substitute(Substituter.Event)
    /// Fetching a derivation's outputs failed: it is built instead.
    case fetchFailed(drv: StorePath, error: String)
    /// Nix's "copying N paths..." before inputs go to a builder or outputs come back (N may be 0).
    case copyingPaths(Int, drv: StorePath)
    /// An input is copied to the builder that lacks it.
    case uploading(StorePath, to: String, narSize: UInt64)
    case building(StorePath, machine: String?)
    /// A line of the builder's log (without its newline).
    case log(StorePath, String)
    /// A built output is copied back and checked.
    case copyingOutput(StorePath, from: String, narSize: UInt64)
    case built(StorePath, machine: String?)
    /// A machine could not be reached: it takes no more builds in this run.
    case machineDisabled(String, reason: String)
    /// A derivation that is not a target failed (Nix prints these as they happen; the
    /// targets' own failures end the build with `BuildError`).
    case failed(BuildFailure)
}
