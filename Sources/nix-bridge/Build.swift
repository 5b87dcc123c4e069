import ArgumentParser
import Bridge
import Foundation
import NixCore
import NixSigning

/// `nix-bridge build`: like `nix-build`, but each output is looked up on the whole fleet
/// first, and only what no builder holds is built, on the machine Nix's rules pick.
struct BuildCommand: InterruptibleCommand, PathListCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build derivations on the fleet, fetching what a builder already has.",
        discussion: """
            Each wanted output is looked up on every machine (and worker-protocol --substituters) \
            first; a trusted copy is fetched, verified, and its inputs are never looked at. A \
            miss resolves its input derivations the same way, then is built on a machine that \
            supports its system and features (inputs the builder lacks are uploaded), and the \
            outputs are copied back verified and signed with 'secret-key-files'. With -j 0 a \
            derivation no machine can build fails; otherwise the local store builds it. Prints \
            the output paths, one per line. Exit status as Nix: 100 build failure, 101 timed \
            out, 102 hash mismatch, 104 not deterministic, 1 otherwise.
            """
    )

    @Argument(help: "Derivations (DRV, DRV^out, DRV^*) or Nix files (instantiated with nix-instantiate).")
    var targets: [String] = []
    @Flag(help: "Also read targets from standard input, one per line (as Nix's --stdin).")
    var stdin = false
    @Option(name: [.customShort("j", allowingJoined: true), .customLong("max-jobs")], help: "Local builds at once ('max-jobs'); 0: only remote builds.")
    var maxJobs: String?
    @Option(help: "The store to build into (default: the local daemon if it runs, else the local store).")
    var store: String?
    @OptionGroup var sources: LookupSourceOptions
    @Option(help: "Where machines' slot locks are kept, shared by concurrent runs (default: $NIX_BRIDGE_STATE_DIR/current-load, else ~/.local/state/nix-bridge/current-load).")
    var stateDir: String?
    @Flag(help: "Print JSON: [{\"drvPath\", \"outputs\": {name: path}}].")
    var json = false
    @OptionGroup var nix: NixOptions

    var pathArguments: [String] { get { targets } set { targets = newValue } }
    var readsStandardInput: Bool { stdin }
    static let pathArgumentName = "<targets> ..."

    func run() async throws {
        let line = StatusLine()
        do {
            var overrides = nix.overrides
            if let maxJobs { overrides.append(.maxJobs(maxJobs)) }
            let config = try FleetConfig.load(overrides: overrides)
            for w in config.warnings { printError("warning: \(w)") }
            let storeURI = try config.destinationStoreURI(store)
            let derived = try resolveTargets(storeURI: store, storeDir: config.storeDir)
            let cache = sources.usableCache(config)
            var lookup = try sources.lookup(config, cache: cache)
            var options = FleetBuilder.Options(maxJobs: config.settings.maxJobs,
                                               buildersUseSubstitutes: config.settings.buildersUseSubstitutes)
            options.signingKeys = try config.signingKeys()
            options.localPlatforms = config.settings.extraPlatforms.union([config.settings.system])
            options.localSystemFeatures = config.settings.systemFeatures
            let slots = stateDir ?? Scheduler.defaultStateDirectory()
            lookup?.activity = config.builderActivity(besideSlotLocks: slots)
            let scheduler = Scheduler(machines: config.machines, stateDirectory: slots,
                                      failedBuilders: config.failedBuilders(besideSlotLocks: slots),
                                      warn: { line.log($0) })
            let builder = FleetBuilder(scheduler: scheduler, opener: config.opener, destinationURI: storeURI,
                                       lookup: lookup, cache: cache, options: options)
            let progress = BuildProgress(line: line, storeDir: config.storeDir)
            let result: Result<[BuiltTarget], any Error>
            do {
                result = .success(try await builder.build(derived) { progress.report($0) })
            } catch {
                result = .failure(error)
            }
            line.finish()
            if let stores = lookup?.stores { for s in stores { await s.close() } }
            let built = try result.get()
            if json {
                print(BuildJSON.render(built, storeDir: config.storeDir))
            } else {
                for t in built { for p in t.paths { print(config.storeDir.print(p)) } }
            }
        } catch let e as ExitCode {
            throw e
        } catch where Task.isCancelled {
            // Interrupted: said once, by `Interruption`.
            line.finish()
            throw error
        } catch let e as BuildError {
            line.finish()
            printError(NoMachineFound.errorLine(e.message))
            throw ExitCode(e.exitStatus)
        } catch {
            line.finish()
            printError(NoMachineFound.errorLine("\(error)"))
            throw ExitCode.failure
        }
    }

    /// Store paths and `DRV^out` as they are; `.nix` files through `nix-instantiate`.
    func resolveTargets(storeURI: String?, storeDir: StoreDirectory) throws -> [DerivedPath] {
        var out: [DerivedPath] = []
        for t in targets {
            if t.hasSuffix(".nix") || (!t.hasPrefix(storeDir.path + "/") && FileManager.default.fileExists(atPath: t)) {
                for drv in try Instantiate.run(file: t, store: storeURI) {
                    out.append(try DerivedPath(parsing: drv.replacingOccurrences(of: "!", with: "^"), in: storeDir))
                }
            } else {
                out.append(try DerivedPath(parsing: t, in: storeDir))
            }
        }
        return out
    }
}

/// The real `nix-instantiate`, for `.nix` targets.
enum Instantiate {
    struct Failed: Error, CustomStringConvertible {
        var file: String
        var status: Int32
        var stderr: String
        var description: String {
            "nix-instantiate '\(file)' failed (exit status \(status))" + (stderr.isEmpty ? "" : ":\n" + stderr)
        }
    }

    static func run(file: String, store: String?) throws -> [String] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["nix-instantiate"] + (store.map { ["--store", $0] } ?? []) + [file]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failed(file: file, status: p.terminationStatus,
                         stderr: String(decoding: errData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }
}

enum BuildJSON {
    static func render(_ built: [BuiltTarget], storeDir dir: StoreDirectory) -> String {
        let objects: [[String: Any]] = built.map { t in
            var o: [String: Any] = [:]
            if let d = t.drvPath {
                o["drvPath"] = dir.print(d)
                o["outputs"] = t.outputs.mapValues { dir.print($0) }
            } else if let p = t.path {
                o["path"] = dir.print(p)
            }
            return o
        }
        return JSONOutput.array(objects)
    }
}
