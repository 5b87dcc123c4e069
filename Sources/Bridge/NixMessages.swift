import Foundation
import NixCore

/// Nix's wording of what happens while paths are looked up, fetched and copied, written
/// once here; the commands show these lines as Nix would.
public enum NixMessages {
    /// Nix's `substitution-goal.cc` / `nix path-info` warning for a copy no trusted key signed.
    public static func ignoringSubstitute(_ path: String, from store: String) -> String {
        "warning: ignoring substitute for '\(path)' from '\(store)', as it's not signed by any of the keys in 'trusted-public-keys'"
    }

    public static func copyingPath(_ path: String, from store: String) -> String {
        "copying path '\(path)' from '\(store)'..."
    }

    public static func copyingPath(_ path: String, to store: String) -> String {
        "copying path '\(path)' to '\(store)'..."
    }

    public static func couldNotFetch(_ path: String, from store: String, error: String) -> String {
        "warning: could not fetch '\(path)' from '\(store)': \(error); trying the next one"
    }

    /// Nix's `printMissing` for substitutions, then the paths one a line. NARs travel
    /// uncompressed, so the download is the unpacked size.
    public static func willBeFetched(_ paths: [String], narBytes: UInt64) -> [String] {
        guard !paths.isEmpty else { return [] }
        let mib = Double(narBytes) / 1_048_576
        let head = paths.count == 1
            ? String(format: "this path will be fetched (%.2f MiB download, %.2f MiB unpacked):", mib, mib)
            : String(format: "these %d paths will be fetched (%.2f MiB download, %.2f MiB unpacked):", paths.count, mib, mib)
        return [head] + paths.map { "  " + $0 }
    }

    /// Nix's `printMissing` for builds, then the derivations one a line.
    public static func willBeBuilt(_ drvs: [String]) -> [String] {
        guard !drvs.isEmpty else { return [] }
        let head = drvs.count == 1 ? "this derivation will be built:" : "these \(drvs.count) derivations will be built:"
        return [head] + drvs.map { "  " + $0 }
    }
}

extension Substituter.Event {
    /// The lines Nix logs for this event, in its words (none for progress).
    public func logLines(storeDir: StoreDirectory) -> [String] {
        switch self {
        case let .planned(paths, bytes):
            return NixMessages.willBeFetched(paths.sorted().map(storeDir.print), narBytes: bytes)
        case let .copying(p, from, _):
            return [NixMessages.copyingPath(storeDir.print(p), from: from)]
        case let .sourceFailed(p, from, error):
            return [NixMessages.couldNotFetch(storeDir.print(p), from: from, error: error)]
        case let .untrusted(p, from):
            return [NixMessages.ignoringSubstitute(storeDir.print(p), from: from)]
        case let .storeFailed(store, error):
            return ["warning: cannot query '\(store)': \(error)"]
        case .received, .fetched:
            return []
        }
    }
}

extension BuildEvent {
    /// The lines Nix logs for this event, in its words (none for bookkeeping).
    public func logLines(storeDir: StoreDirectory) -> [String] {
        switch self {
        case let .planned(build, _):
            return NixMessages.willBeBuilt(build.map(storeDir.print))
        case let .substitute(e):
            return e.logLines(storeDir: storeDir)
        case let .fetchFailed(drv, error):
            return ["warning: cannot fetch the outputs of '\(storeDir.print(drv))' (\(error)); building it instead"]
        case let .copyingPaths(n, _):
            return ["copying \(n) paths..."]
        case let .uploading(p, to, _):
            return [NixMessages.copyingPath(storeDir.print(p), to: to)]
        case let .building(d, machine):
            return ["building '\(storeDir.print(d))'" + (machine.map { " on '\($0)'" } ?? "") + "..."]
        case let .log(_, text):
            return [text]
        case let .copyingOutput(p, from, _):
            return [NixMessages.copyingPath(storeDir.print(p), from: from)]
        case let .failed(f):
            return [NoMachineFound.errorLine(f.message)]
        case .built, .machineDisabled:
            // The scheduler prints Nix's "cannot build on '...'" itself.
            return []
        }
    }
}
