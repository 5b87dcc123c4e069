import ArgumentParser
import Bridge
import Foundation
import NixCore
import NixStore

/// `nix-bridge lookup`: where each path is across the fleet, who signed it, and whether we
/// may use it.
struct LookupCommand: InterruptibleCommand, PathListCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup",
        abstract: "Find store paths or derivation outputs on every builder at once.",
        discussion: """
            Asks every configured machine (and worker-protocol --substituters) at once. A copy \
            is usable only when signed by a key in 'trusted-public-keys'. Answers are cached \
            in SQLite with narinfo-cache-positive-ttl / narinfo-cache-negative-ttl. Exits 0 \
            when every path has a usable copy.
            """
    )

    @Argument(help: "Store paths, DRV^out, DRV^* or .drv paths (their outputs).")
    var paths: [String] = []
    @Flag(help: "Also read paths from standard input, one per line (as Nix's --stdin).")
    var stdin = false
    @Flag(help: "Print JSON.")
    var json = false
    @Option(help: "How many valid signatures a path needs.")
    var sigsNeeded: Int = 1
    @OptionGroup var sources: LookupSourceOptions
    @Flag(help: "Ignore the narinfo cache.")
    var noCache = false
    @OptionGroup var nix: NixOptions

    var pathArguments: [String] { get { paths } set { paths = newValue } }
    var readsStandardInput: Bool { stdin }
    static let pathArgumentName = "<paths> ..."

    func run() async throws {
        let config = try nix.load()
        let targets = try Targets.resolve(paths, storeDir: config.storeDir, readFile: Files.readDerivation)
        guard let lookup = try sources.lookup(config, sigsNeeded: sigsNeeded, noCache: noCache) else {
            throw CLIError.noStores
        }
        let stores = lookup.stores
        let line = StatusLine()
        let answered = StoreCount()
        let storeCount = stores.count, pathCount = targets.count
        let status: @Sendable (Int) -> String = { n in "[\(n)/\(storeCount) stores] querying \(pathCount) paths" }
        line.update(status(0))
        let result = await withTaskCancellationHandler {
            await lookup.lookup(targets) { _ in line.update(status(answered.increment())) }
        } onCancel: {
            Task { for s in stores { await s.close() } }
        }
        line.finish()
        for s in stores { await s.close() }
        try Task.checkCancellation()
        for f in result.failures { printError("warning: cannot query '\(f.store)': \(f.error)") }
        if json {
            print(LookupJSON.render(result, storeDir: lookup.storeDir))
        } else {
            for a in result.answers { LookupText.print(a, storeDir: lookup.storeDir, unasked: result.failures.count) }
        }
        let missing = result.answers.filter { $0.best == nil }.count
        if missing > 0 && !result.failures.isEmpty {
            printError("error: \(missing) of \(result.answers.count) paths have no usable copy on the stores that answered; "
                + "\(result.failures.map { "'\($0.store)'" }.joined(separator: ", ")) could not be asked, so the answer is incomplete")
        }
        if missing > 0 { throw ExitCode.failure }
    }
}

/// How many stores have answered so far.
final class StoreCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() -> Int { lock.withLock { n += 1; return n } }
}

enum LookupText {
    static func print(_ a: LookupAnswer, storeDir dir: StoreDirectory, unasked: Int = 0) {
        let path = dir.print(a.path)
        Swift.print(path)
        if a.locations.isEmpty {
            Swift.print(unasked == 0 ? "  not found on any store"
                        : "  not found on the stores that answered (\(unasked) could not be asked)")
            return
        }
        for l in a.locations {
            let cached = l.fromCache ? " (cached)" : ""
            if l.isTrusted {
                let by = l.verification.verifiedBy.map { "'\($0.name)'" }.joined(separator: ", ")
                let how = by.isEmpty ? "content-addressed" : "signed by \(by)"
                Swift.print("  \(l.store): \(how), trusted\(cached)")
            } else {
                Swift.print("  \(l.store): not trusted\(cached)")
                printError(NixMessages.ignoringSubstitute(path, from: l.store))
            }
        }
    }
}

enum LookupJSON {
    static func render(_ r: Lookup.Result, storeDir dir: StoreDirectory) -> String {
        let objects: [[String: Any]] = r.answers.map { a in
            var o: [String: Any] = ["path": dir.print(a.path)]
            o["locations"] = a.locations.map { l -> [String: Any] in
                [
                    "store": l.store,
                    "trusted": l.isTrusted,
                    "signedBy": l.verification.verifiedBy.map(\.name),
                    "signatures": l.info.sigs.sorted(),
                    "narHash": l.info.narHash.string(.nix32),
                    "narSize": l.info.narSize,
                    "fromCache": l.fromCache,
                ]
            }
            if let best = a.best { o["best"] = best.store }
            return o
        }
        return JSONOutput.array(objects)
    }
}
