import ArgumentParser
import Bridge
import Foundation
import NixCore
import NixStore

/// `nix-bridge substitute`: fetch paths (with their closures) from the fleet into a store.
struct SubstituteCommand: InterruptibleCommand, PathListCommand {
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
    var paths: [String] = []
    @Flag(help: "Also read paths from standard input, one per line (as Nix's --stdin).")
    var stdin = false
    @Option(help: "The destination store (default: the local daemon if it runs, else the local store).")
    var store: String?
    @OptionGroup var sources: LookupSourceOptions
    @Flag(help: "Print the paths fetched as JSON: [{\"path\", \"from\", \"narSize\"}].")
    var json = false
    @OptionGroup var nix: NixOptions

    var pathArguments: [String] { get { paths } set { paths = newValue } }
    var readsStandardInput: Bool { stdin }
    static let pathArgumentName = "<paths> ..."

    func run() async throws {
        let config = try nix.load()
        let targets = try Targets.resolve(paths, storeDir: config.storeDir, readFile: Files.readDerivation)
        guard let lookup = try sources.lookup(config) else {
            throw CLIError.noStores
        }
        let sources = lookup.stores
        let destination = try config.opener.store(try config.destinationStoreURI(store))
        let substituter = Substituter(lookup: lookup, destination: destination)
        let line = StatusLine()
        let progress = SubstituteProgress()
        let record = FetchRecord()
        line.update("querying \(targets.count) paths on \(sources.count) stores")
        let result: Result<[StorePath], any Error>
        do {
            // Interrupted: every connection closed, so the work in flight fails at once (the
            // destination daemon, cut off before the NAR's end, registers nothing).
            result = .success(try await withTaskCancellationHandler {
                try await substituter.substitute(targets) { event in
                    Self.report(event, storeDir: config.storeDir, line: line, progress: progress, record: record)
                }
            } onCancel: {
                Task { for s in sources + [destination] { await s.close() } }
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
            for t in targets { print(config.storeDir.print(t)) }
        }
    }

    static func report(_ event: Substituter.Event, storeDir dir: StoreDirectory, line: StatusLine,
                       progress: SubstituteProgress, record: FetchRecord) {
        for text in event.logLines(storeDir: dir) { line.log(text) }
        switch event {
        case let .planned(paths, bytes):
            progress.planned(paths: paths.count, bytes: bytes)
        case let .copying(p, from, _):
            progress.copying(dir.print(p), from: from)
        case let .received(_, _, bytes):
            progress.received(bytes)
        case let .fetched(p, from, narSize):
            progress.fetched(narSize: narSize)
            record.add(path: dir.print(p), from: from, narSize: narSize)
        case .sourceFailed, .untrusted, .storeFailed:
            break
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
