import ArgumentParser
import Bridge
import Foundation
import NixCore
import NixStore
import NixWire

/// `nix-bridge path-info`: like `nix path-info`, with every query pipelined.
struct PathInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "path-info",
        abstract: "Show information about store paths in a store (like 'nix path-info')."
    )

    @Option(name: .customLong("store"), help: "The store to ask (ssh-ng://host, unix://PATH, daemon, local?root=DIR).")
    var store: String = "daemon"
    @Flag(help: "Print JSON.")
    var json = false
    @Flag(help: "Show signatures.")
    var sigs = false
    @Flag(name: [.customShort("r"), .customLong("recursive")], help: "Apply to the closure of the paths.")
    var recursive = false
    @Option(help: "How many connections to open to the store.")
    var connections: Int = 1
    @Argument(help: "Store paths.")
    var paths: [String]
    @OptionGroup var nix: NixOptions

    func run() async throws {
        var opener = try nix.load().opener
        opener.maxConnections = max(1, connections)
        let uri = try StoreURI(parsing: store)
        let remote = try opener.store(uri)
        let dir = remote.storeDir
        var roots: [StorePath] = []
        for p in paths {
            do { roots.append(try dir.storePath(containing: p)) } catch {
                printError("error: \(error)")
                throw ExitCode.failure
            }
        }
        do {
            let infos = try await Closure.pathInfos(of: roots, in: remote, recursive: recursive)
            if let missing = roots.first(where: { infos[$0] == nil }) {
                printError("error: path '\(dir.print(missing))' is not valid")
                throw ExitCode.failure
            }
            if json {
                print(PathInfoJSON.render(infos.keys.sorted().map { ($0, infos[$0]!) }, dir: dir))
            } else {
                let ordered = PathInfoOrder.nix(infos.mapValues(\.references))
                let width = ordered.map { dir.print($0).count }.max() ?? 0
                for p in ordered {
                    let s = dir.print(p)
                    guard sigs, let info = infos[p] else { print(s); continue }
                    var fields: [String] = []
                    if info.ultimate { fields.append("ultimate") }
                    if let ca = info.ca { fields.append("ca:\(ca)") }
                    fields += info.signatures.sorted()
                    print(s + String(repeating: " ", count: width - s.count) + "\t" + fields.joined(separator: " "))
                }
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        await remote.close()
    }
}

/// The order `nix path-info` prints paths in (Nix 2.8 StorePathsCommand: topoSortPaths,
/// reversed): a depth-first walk in StorePath order that puts references before referrers.
enum PathInfoOrder {
    static func nix(_ references: [StorePath: Set<StorePath>]) -> [StorePath] {
        var out: [StorePath] = []
        var visited = Set<StorePath>()
        // Iterative, so that a long chain of references cannot exhaust a task's stack.
        for root in references.keys.sorted() where visited.insert(root).inserted {
            var stack: [(path: StorePath, children: [StorePath])] = [(root, children(of: root, references))]
            while !stack.isEmpty {
                if let next = stack[stack.count - 1].children.popLast() {
                    if visited.insert(next).inserted { stack.append((next, children(of: next, references))) }
                } else {
                    out.append(stack.removeLast().path)
                }
            }
        }
        return out
    }

    /// References within the set, largest first (visited from the end, so smallest first).
    private static func children(of p: StorePath, _ references: [StorePath: Set<StorePath>]) -> [StorePath] {
        (references[p] ?? []).filter { $0 != p && references[$0] != nil }.sorted(by: >)
    }
}

enum PathInfoJSON {
    static func render(_ infos: [(StorePath, UnkeyedValidPathInfo)], dir: StoreDirectory) -> String {
        let objects: [[String: Any]] = infos.map { path, info in
            var o: [String: Any] = [
                "path": dir.print(path),
                "narHash": info.narHash.string(.nix32),
                "narSize": info.narSize,
                "references": info.references.map(dir.print).sorted(),
                "registrationTime": info.registrationTime,
            ]
            if let d = info.deriver { o["deriver"] = dir.print(d) }
            if info.ultimate { o["ultimate"] = true }
            if !info.signatures.isEmpty { o["signatures"] = info.signatures.sorted() }
            if let ca = info.ca { o["ca"] = "\(ca)" }
            return o
        }
        let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
