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
            requested paths, one per line (with --json: what was fetched, from where). On a \
            terminal, progress (paths and MiB done / total) is shown on stderr.
            """
    )

    @Argument(help: "Store paths, DRV^out, DRV^* or .drv paths (their outputs).")
    var paths: [String]
    @Option(help: "The destination store (default: the local daemon if it runs, else the local store).")
    var store: String?
    @OptionGroup var sources: LookupSourceOptions
    @Flag(help: "Print the paths fetched as JSON: [{\"path\", \"from\", \"narSize\"}].")
    var json = false
    @OptionGroup var nix: NixOptions

    func run() async throws {
        do {
            let config = try nix.load()
            let targets = try Targets.resolve(paths)
            guard let lookup = try sources.lookup(config) else {
                throw CLIError.noStores
            }
            let sources = lookup.stores
            let destination = try config.opener.store(try StoreURI(parsing: store ?? Self.defaultStore))
            let substituter = Substituter(lookup: lookup, destination: destination)
            let line = StatusLine()
            let progress = SubstituteProgress()
            let record = FetchRecord()
            line.update("querying \(targets.count) paths on \(sources.count) stores")
            let result: Result<[StorePath], any Error>
            do {
                result = .success(try await substituter.substitute(targets) { event in
                    Self.report(event, line: line, progress: progress, record: record)
                })
            } catch {
                result = .failure(error)
            }
            line.finish()
            for s in sources { await s.close() }
            await destination.close()
            _ = try result.get()
            if json {
                print(record.json)
            } else {
                for t in targets { print(StoreDirectory.default.print(t)) }
            }
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

    static func report(_ event: Substituter.Event, line: StatusLine, progress: SubstituteProgress, record: FetchRecord) {
        let dir = StoreDirectory.default
        switch event {
        case let .planned(paths, bytes):
            progress.planned(paths: paths.count, bytes: bytes)
            if !paths.isEmpty {
                // Nix's wording (the NARs travel uncompressed: download = unpacked).
                let mib = SubstituteProgress.mib(bytes)
                line.log(paths.count == 1
                    ? String(format: "this path will be fetched (%.2f MiB download, %.2f MiB unpacked):", mib, mib)
                    : String(format: "these %d paths will be fetched (%.2f MiB download, %.2f MiB unpacked):", paths.count, mib, mib))
                for p in paths.sorted() { line.log("  " + dir.print(p)) }
            }
        case let .copying(p, from, _):
            progress.copying(dir.print(p), from: from)
            line.log("copying path '\(dir.print(p))' from '\(from)'...")
        case let .received(_, _, bytes):
            progress.received(bytes)
        case let .fetched(p, from, narSize):
            progress.fetched(narSize: narSize)
            record.add(path: dir.print(p), from: from, narSize: narSize)
        case let .sourceFailed(p, from, error):
            line.log("warning: could not fetch '\(dir.print(p))' from '\(from)': \(error); trying the next one")
        case let .untrusted(p, from):
            line.log("warning: ignoring substitute for '\(dir.print(p))' from '\(from)', as it's not signed by any of the keys in 'trusted-public-keys'")
        }
        line.update(progress.text)
    }
}

/// The paths fetched, for `--json`.
final class FetchRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [[String: Any]] = []

    func add(path: String, from: String, narSize: UInt64) {
        lock.withLock { entries.append(["path": path, "from": from, "narSize": narSize]) }
    }

    var json: String {
        JSONOutput.array(lock.withLock { entries })
    }
}
