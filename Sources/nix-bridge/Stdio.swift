import ArgumentParser
import Bridge
import Foundation
import NixStore
import NixTransport

/// `nix-bridge --stdio [--option NAME VALUE] [--builders B] [--store X]`: the options Nix
/// passes (`--store 'X'` with `remote-store`, ignored) and the fleet's settings. The root
/// command's default, so Nix's command line needs no subcommand name; without `--stdio`
/// it shows the root's help.
struct StdioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stdio",
        abstract: "Serve the fleet's trusted paths as a Nix store on stdin/stdout (nix-bridge --stdio).",
        discussion: "The worker protocol, for ssh-ng://HOST?remote-program=nix-bridge; also takes --option and --builders.")

    @Flag(help: "Serve on stdin/stdout.") var stdio = false
    @Option(help: "Ignored: what Nix appends to the remote program with 'remote-store'.") var store: String?
    @OptionGroup var nix: NixOptions

    func run() async throws {
        guard stdio else { throw CleanExit.helpRequest(NixBridge.self) }
        try await StdioServer.run(nix: nix)
    }
}

/// `nix-bridge --stdio`: the worker protocol on stdin/stdout, answered from the fleet, so
/// Nix can use nix-bridge as an ssh-ng store or substituter
/// (`ssh-ng://HOST?remote-program=nix-bridge`). Nothing but the protocol goes to stdout:
/// warnings and errors go to stderr, which Nix shows to its user.
enum StdioServer {
    /// What the handshake announces as our "Nix version" (1.33+).
    static let versionText = "nix-bridge " + NixBridge.configuration.version

    static func run(nix: NixOptions) async throws {
        let config = try nix.load()
        if try await relay(to: config.settings.bridgeSocket) { return }
        guard var lookup = try config.lookup(extraSubstituters: nil, cache: try? config.narInfoCache()) else {
            throw CLIError.noStores
        }
        lookup.warnOnCacheWriteFailures { printError("nix-bridge: \($0)") }
        let view = FleetView(lookup: lookup, signingKeys: try config.signingKeys())
        let writeStore = try config.writeStore()
        let stream = DescriptorStream.standardIO()
        if let file = ProcessInfo.processInfo.environment["NIX_BRIDGE_STATS"] {
            // Diagnostics for benchmarks, rewritten every 50 ms (stdout is the protocol's, and
            // Nix kills its remote program when it is done with it).
            Task.detached {
                while true {
                    try? Data("\(await view.statistics)\n".utf8).write(to: URL(fileURLWithPath: file))
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
        let ending = await StoreServer.serve(stream, backend: FleetStoreBackend(view: view, writeStore: writeStore),
                                             info: FleetStoreBackend.handshake(version: versionText)) { line in
            printError("nix-bridge: \(line)")
        }
        for store in lookup.stores { await store.close() }
        await writeStore?.close()
        await stream.close()
        if case let .error(why) = ending { printError("nix-bridge: connection ended: \(why)") }
    }

    /// Hands the client to the service on `bridge-socket` when it answers: it serves with its
    /// own settings, builder connections and cache, so this login costs one local connect.
    /// False when there is no such service (the socket is unset, missing, refused or not ours
    /// to use): then this process serves alone.
    static func relay(to socket: String) async throws -> Bool {
        guard !socket.isEmpty, let service = try? UnixSocketStream(path: socket) else { return false }
        let stdio = DescriptorStream.standardIO()
        if let why = await StreamRelay.run(stdio, service) {
            printError("nix-bridge: relay to unix://\(socket) ended: \(why)")
        }
        await service.close()
        await stdio.close()
        return true
    }
}
