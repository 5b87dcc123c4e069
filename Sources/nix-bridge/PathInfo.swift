import ArgumentParser
import Bridge
import Foundation
import NixCore
import NixStore

/// `nix-bridge path-info`: like `nix path-info`, with every query pipelined.
struct PathInfoCommand: InterruptibleCommand, PathListCommand {
    static let configuration = CommandConfiguration(
        commandName: "path-info",
        abstract: "Show information about store paths in a store (like 'nix path-info')."
    )

    @Option(name: .customLong("store"), help: "The store to ask (ssh-ng://host, unix://PATH, daemon, local?root=DIR).")
    var store: String = "daemon"
    @Flag(help: "Print JSON as Nix 2.19 and later do: an object keyed by store path (null for a path that is not valid).")
    var json = false
    @Flag(help: "Print JSON as Nix 2.8 to 2.18 did: a list of objects, each with its \"path\".")
    var jsonList = false
    @Flag(help: "Show signatures.")
    var sigs = false
    @Flag(name: [.customShort("r"), .customLong("recursive")], help: "Apply to the closure of the paths.")
    var recursive = false
    @Option(help: "How many connections to open to the store.")
    var connections: Int = 1
    @Argument(help: "Store paths.")
    var paths: [String] = []
    @Flag(help: "Also read paths from standard input, one per line (as Nix's --stdin).")
    var stdin = false
    @OptionGroup var nix: NixOptions

    var pathArguments: [String] { get { paths } set { paths = newValue } }
    var readsStandardInput: Bool { stdin }
    static let pathArgumentName = "<paths> ..."

    func run() async throws {
        var opener = try nix.load().opener
        opener.maxConnections = max(1, connections)
        let remote = try opener.store(try StoreURI(parsing: store))
        let dir = remote.storeDir
        var failure: String?
        do {
            var roots: [StorePath] = []
            for p in paths { roots.append(try dir.storePath(containing: p)) }
            let infos = try await withTaskCancellationHandler {
                try await Closure.pathInfos(of: roots, in: remote, recursive: recursive)
            } onCancel: {
                Task { await remote.close() }
            }
            if json, !jsonList {
                // Nix 2.19+ reports a path that is not valid as null, and still succeeds.
                print(PathInfoJSON.object(infos, missing: roots.filter { infos[$0] == nil }, dir: dir))
            } else if let missing = roots.first(where: { infos[$0] == nil }) {
                failure = "path '\(dir.print(missing))' is not valid"
            } else {
                print(render(infos, dir: dir), terminator: "")
            }
        } catch {
            failure = "\(error)"
        }
        await remote.close()
        if let failure { throw CLIError.failed(failure) }
    }

    /// What Nix 2.8's `nix path-info` prints: one line per path (with `--sigs`, padded, then
    /// `ultimate`, `ca:...` and the signatures), or (`--json-list`) a JSON array.
    private func render(_ infos: [StorePath: PathInfo], dir: StoreDirectory) -> String {
        let ordered = Closure.dependenciesFirst(infos)
        if jsonList { return PathInfoJSON.list(ordered.map { infos[$0]! }, dir: dir) + "\n" }
        let width = ordered.map { dir.print($0).count }.max() ?? 0
        var out = ""
        for p in ordered {
            let s = dir.print(p)
            out += s
            if sigs, let info = infos[p] {
                var fields: [String] = []
                if info.ultimate { fields.append("ultimate") }
                if let ca = info.ca { fields.append("ca:\(ca)") }
                fields += info.sigs.sorted()
                out += String(repeating: " ", count: width - s.count) + "\t" + fields.joined(separator: " ")
            }
            out += "\n"
        }
        return out
    }
}

/// `path-info --json` in the two shapes Nix has printed (Docs/JSON.md).
enum PathInfoJSON {
    /// Nix 2.19 and later: `{PATH: {ca, deriver, narHash, narSize, references,
    /// registrationTime, signatures, ultimate}}`, every field present (null when unknown), a
    /// path that is not valid as null.
    static func object(_ infos: [StorePath: PathInfo], missing: [StorePath], dir: StoreDirectory) -> String {
        var out: [String: Any] = [:]
        for p in missing { out[dir.print(p)] = NSNull() }
        for (p, info) in infos {
            out[dir.print(p)] = [
                "ca": info.ca.map { "\($0)" as Any } ?? NSNull(),
                "deriver": info.deriver.map { dir.print($0) as Any } ?? NSNull(),
                "narHash": info.narHash.string(.sri),
                "narSize": info.narSize,
                "references": info.references.map(dir.print).sorted(),
                "registrationTime": info.registrationTime == 0 ? NSNull() : info.registrationTime as Any,
                "signatures": info.sigs.sorted(),
                "ultimate": info.ultimate,
            ] as [String: Any]
        }
        return JSONOutput.object(out)
    }

    /// Nix 2.8 to 2.18: a list, dependencies first, absent fields left out.
    static func list(_ infos: [PathInfo], dir: StoreDirectory) -> String {
        let objects: [[String: Any]] = infos.map { info in
            var o: [String: Any] = [
                "path": dir.print(info.path),
                // Nix 2.8 prints SRI here (`sha256-<base64>`), unlike narinfo files.
                "narHash": info.narHash.string(.sri),
                "narSize": info.narSize,
                "references": info.references.map(dir.print).sorted(),
                "registrationTime": info.registrationTime,
            ]
            if let d = info.deriver { o["deriver"] = dir.print(d) }
            if info.ultimate { o["ultimate"] = true }
            if !info.sigs.isEmpty { o["signatures"] = info.sigs.sorted() }
            if let ca = info.ca { o["ca"] = "\(ca)" }
            return o
        }
        return JSONOutput.array(objects)
    }
}
