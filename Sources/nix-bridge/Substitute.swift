import ArgumentParser
import Bridge
import Foundation
import NixCore
import NixStore

/// `nix-bridge substitute`: fetch paths (with their closures) from the fleet into a store.
struct SubstituteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "substitute",
        abstract: "Fetch store paths or derivation outputs from the builders that hold them.",
        discussion: """
            Only copies signed by a key in 'trusted-public-keys' are used. Each NAR is checked \
            against its signed hash and size before the destination registers it; on a \
            mismatch or a failure the next builder holding the path is tried. Prints the \
            paths fetched, one per line.
            """
    )

    @Argument(help: "Store paths, DRV^out, DRV^* or .drv paths (their outputs).")
    var paths: [String]
    @Option(help: "The destination store (default: the local daemon if it runs, else the local store).")
    var store: String?
    @Option(help: "Worker-protocol stores to fetch from besides the machines (space-separated URIs).")
    var substituters: String?
    @Option(help: "The narinfo cache file.")
    var narinfoCache: String?
    @OptionGroup var nix: NixOptions

    func run() async throws {
        do {
            let config = try nix.load()
            let targets = try Targets.resolve(paths)
            let uris = config.lookupStoreURIs(extraSubstituters: substituters?.split(separator: " ").map(String.init) ?? [])
            if uris.isEmpty { throw CLIError.noStores }
            let sources = try uris.map { try config.opener.store($0) }
            let destURI = try StoreURI(parsing: store ?? Self.defaultStore)
            let destination = try config.opener.store(destURI)
            let lookup = Lookup(stores: sources, trustedKeys: try config.trustedKeys(),
                                cache: try config.narInfoCache(path: narinfoCache))
            let substituter = Substituter(lookup: lookup, destination: destination)
            let fetched = try await substituter.substitute(targets) { event in
                switch event {
                case let .planned(n, bytes):
                    if n > 0 { printError(String(format: "copying %d paths (%.1f MiB)...", n, Double(bytes) / 1_048_576)) }
                case let .fetched(p, from, _):
                    printError("copying path '\(StoreDirectory.default.print(p))' from '\(from)'...")
                case let .sourceFailed(p, from, error):
                    printError("warning: could not fetch '\(StoreDirectory.default.print(p))' from '\(from)': \(error); trying the next one")
                case let .untrusted(p, from):
                    printError("warning: ignoring substitute for '\(StoreDirectory.default.print(p))' from '\(from)', as it's not signed by any of the keys in 'trusted-public-keys'")
                }
            }
            for s in sources { await s.close() }
            await destination.close()
            _ = fetched
            for t in targets { print(StoreDirectory.default.print(t)) }
        } catch let e as ExitCode {
            throw e
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }

    /// Nix's `auto`: the daemon when its socket exists, else the local store directly.
    static var defaultStore: String {
        FileManager.default.fileExists(atPath: "/nix/var/nix/daemon-socket/socket") ? "daemon" : "local"
    }
}
