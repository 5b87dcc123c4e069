import Foundation
import NixCore
import TestSupport

/// Test-side I/O for the pure config/machines parsers.
enum Disk {
    struct ReadFailed: Error, CustomStringConvertible {
        var path: String
        var description: String { "cannot read '\(path)'" }
    }

    /// A `FileReader` over the real file system: nil when the file does not exist.
    static func reader(_ path: String) throws -> String? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return nil }
        guard !isDir.boolValue, let data = FileManager.default.contents(atPath: path) else { throw ReadFailed(path: path) }
        return String(decoding: data, as: UTF8.self)
    }

    /// A reader over an in-memory file map, logging what was asked.
    final class Files: @unchecked Sendable {
        var files: [String: String]
        var failing: Set<String> = []
        var asked: [String] = []
        init(_ files: [String: String]) { self.files = files }
        func read(_ path: String) throws -> String? {
            asked.append(path)
            if failing.contains(path) { throw ReadFailed(path: path) }
            return files[path]
        }
    }

    static func write(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
}

/// Real Nix 2.8 as the referee: its build hook parses `--builders` and, when no machine fits a
/// derivation, prints every machine as `(systems, maxjobs, supportedFeatures, mandatoryFeatures)`.
enum RealNixMachines {
    enum Outcome: Equatable {
        case machines([String])
        case error(String)
    }

    /// A chroot store holding an `aarch64-linux` derivation that requires a feature no test
    /// machine offers, so the hook declines at once and prints its table.
    final class Fixture: @unchecked Sendable {
        let dir: URL
        let drv: String

        init() throws {
            dir = try TestSupport.temporaryDirectory("nb-machines")
            try Disk.write("sandbox = false\nsubstituters =\n", to: dir.appendingPathComponent("nix.conf"))
            let env = ["NIX_CONF_DIR": dir.path, "NIX_USER_CONF_FILES": ""]
            drv = try TestSupport.run(
                ["nix-instantiate", "--store", dir.appendingPathComponent("root").path, "--expr",
                 #"derivation { name = "nb-machines"; system = "aarch64-linux"; builder = "/bin/sh"; requiredSystemFeatures = [ "nb-never" ]; }"#],
                environment: env).trimmed
        }

        func outcome(builders: String) throws -> Outcome {
            let out = try TestSupport.run(
                ["timeout", "30", "nix-store", "--store", dir.appendingPathComponent("root").path, "--realise", drv,
                 "-j0", "--builders", builders],
                environment: ["NIX_CONF_DIR": dir.path, "NIX_USER_CONF_FILES": ""], check: false)
            let lines = out.stderr.split(separator: "\n").map(String.init)
            if let header = lines.firstIndex(of: "(systems, maxjobs, supportedFeatures, mandatoryFeatures)") {
                return .machines(Array(lines[(header + 1)...].prefix { $0.hasPrefix("(") }))
            }
            if lines.contains(where: { $0.contains("unable to start any build") }) { return .machines([]) }
            return .error(lines.first { $0.hasPrefix("error: ") } ?? out.stderr)
        }
    }

    /// Our machine in the hook's table format.
    static func row(_ m: Machine) -> String {
        "(\(m.systemTypes.joined(separator: ", ")), \(m.maxJobs), \(m.supportedFeatures.sorted().joined(separator: ", ")), \(m.mandatoryFeatures.sorted().joined(separator: ", ")))"
    }

    /// The phrase of Nix 2.8's error for each of our error kinds.
    static func nixPhrase(_ kind: MachinesError.Kind) -> String {
        switch kind {
        case .missingStoreUri: "store URL was not found"
        case .invalidMaxJobs: "failed to convert column #3"
        case .invalidSpeedFactor: "failed to convert column #4"
        case .invalidHostKey: "is not valid base64 string"
        default: "?"
        }
    }
}

