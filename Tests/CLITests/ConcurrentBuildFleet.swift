import Foundation
import TestSupport

/// A one-builder fleet (TestSupport's `BuildFleet`: sandboxed, signing builder, maxJobs 1)
/// and the environment `nix-bridge build` and real Nix run in as clients: an empty nix.conf
/// but for the builder's key and `substituters =`, and cache and state (slot lock)
/// directories of its own, so the host's /etc/nix and ~/.cache stay out of it.
final class BuildCLIFleet: @unchecked Sendable {
    let build: BuildFleet
    let environment: [String: String]
    var work: URL { build.work }
    var system: String { build.system }
    /// The one machine, as a `--builders` value.
    var machines: String { "@" + build.machinesFile }

    init() throws {
        build = try BuildFleet(features: [[]], maxJobs: 1, label: "nb-build-cli")
        let conf = build.work.appendingPathComponent("nixconf")
        try FileManager.default.createDirectory(at: conf, withIntermediateDirectories: true)
        try Data("substituters =\ntrusted-public-keys = \(build.trustedPublicKeys)\n".utf8)
            .write(to: conf.appendingPathComponent("nix.conf"))
        environment = [
            "NIX_SSHOPTS": build.fleet.nixSSHOpts,
            "NIX_CONF_DIR": conf.path,
            "NIX_USER_CONF_FILES": conf.appendingPathComponent("nix.conf").path,
            "XDG_CONFIG_HOME": build.work.appendingPathComponent("xdg-config").path,
            "XDG_CACHE_HOME": build.work.appendingPathComponent("xdg-cache").path,
            // The slot locks (current-load) every client of this fleet shares.
            "XDG_STATE_HOME": build.work.appendingPathComponent("xdg-state").path,
        ]
    }

    deinit {
        let dir = build.fleet.directory
        build.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    /// A fresh chroot store for a client, as a store URI.
    func newLocalStore(_ name: String) -> String {
        "local?root=\(work.appendingPathComponent(name).path)"
    }

    /// Writes `text` to a file in the work directory; returns its path.
    func write(_ name: String, _ text: String) throws -> String {
        let url = work.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// `nix-instantiate --store STORE FILE [-A ATTR]`: the .drv path.
    func instantiate(_ file: String, attribute: String? = nil, store: String) throws -> String {
        try TestSupport.run(["nix-instantiate", "--store", store, file] + (attribute.map { ["-A", $0] } ?? []),
                            environment: environment).trimmed
    }

    /// Runs `nix-bridge ARGS` (exit status not checked).
    func bridge(_ args: [String]) throws -> TestSupport.Output {
        guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        return try TestSupport.run([binary] + args, environment: environment, check: false)
    }

    /// Runs a real Nix tool (exit status not checked).
    func nix(_ command: [String]) throws -> TestSupport.Output {
        try TestSupport.run(command, environment: environment, check: false)
    }

    /// Starts every command at once (each its own process, output to files), then waits for
    /// all of them: none waits for another to start.
    func runConcurrently(_ commands: [[String]]) throws -> [Finished] {
        var running: [(Process, URL, URL)] = []
        for (i, command) in commands.enumerated() {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: command[0])
            p.arguments = Array(command.dropFirst())
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let out = work.appendingPathComponent("concurrent-\(i).out"), err = work.appendingPathComponent("concurrent-\(i).err")
            try Data().write(to: out)
            try Data().write(to: err)
            p.standardOutput = try FileHandle(forWritingTo: out)
            p.standardError = try FileHandle(forWritingTo: err)
            p.standardInput = FileHandle.nullDevice
            try p.run()
            running.append((p, out, err))
        }
        return try running.map { p, out, err in
            p.waitUntilExit()
            return Finished(status: p.terminationStatus, text: String(decoding: try Data(contentsOf: out), as: UTF8.self),
                            stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self))
        }
    }
}

/// A process that ran to its end.
struct Finished {
    var status: Int32
    var text: String
    var stderr: String
    var trimmed: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// What Nix prints to stderr when `-j0` leaves it no way to build: from the line "Failed to
/// find a machine for remote build!" (when there are machines), else from the line "error:
/// unable to start any build", to the end, without colour codes; empty when there is neither.
func refusalText(_ stderr: String) -> String {
    let plain = stderr.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
    let lines = plain.split(separator: "\n", omittingEmptySubsequences: false)
    let start = lines.firstIndex { $0 == "Failed to find a machine for remote build!" }
        ?? lines.firstIndex { $0.hasPrefix("error: unable to start any build") }
    guard let start else { return "" }
    return lines[start...].joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
}
