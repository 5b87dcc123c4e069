import Foundation
import TestSupport
import Testing

/// The built `nix-bridge` executable, run as a user would run it.
enum CLI {
    /// Next to the test bundle (`.build/<triple>/debug/`), else under the project's `.build`.
    static let binary: String? = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var candidates = [exe.deletingLastPathComponent().appendingPathComponent("nix-bridge")]
        for config in ["debug", "release"] {
            candidates.append(TestSupport.projectRoot.appendingPathComponent(".build/\(config)/nix-bridge"))
        }
        return candidates.map(\.path).first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var isBuilt: Bool { binary != nil || TestSupport.peersRequired }

    /// The folder holding the executable, symbolic links resolved (to bind into another root).
    static var binaryDirectory: String {
        binary.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().deletingLastPathComponent().path } ?? "/nonexistent"
    }

    /// Runs `nix-bridge ARGS` without checking the exit status.
    @discardableResult
    static func run(_ args: [String], input: Data? = nil) throws -> TestSupport.Output {
        guard let binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        return try TestSupport.run([binary] + args, input: input, check: false)
    }

    /// File mode bits (e.g. 0o600).
    static func mode(_ url: URL) throws -> Int {
        let attrs = try FileManager.default.attributesOfItem(atPath: url.path)
        return (attrs[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }
}

extension Fleet {
    /// `nix-bridge ARGS` in the fleet's client environment (exit status not checked).
    func bridge(_ args: [String], input: Data? = nil) throws -> TestSupport.Output {
        guard let binary = CLI.binary else { throw SigningFixtures.Failure("nix-bridge is not built") }
        return try run([binary] + args, input: input, check: false)
    }
}

extension SpawnedProcess {
    /// Sends `signal` and checks that the command ended as Nix ends when interrupted, within
    /// `limit`: status 1, `error: interrupted by the user` last in `log`.
    func expectInterrupted(by signal: Int32, log: String, within limit: Duration,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        let sent = ContinuousClock.now
        kill(pid, signal)
        let ending = waitForExit(timeout: Double(limit.components.seconds) + 15)
        let took = ContinuousClock.now - sent
        #expect(ending == .exited(1), "\(String(describing: ending))", sourceLocation: sourceLocation)
        #expect(took < limit, "\(took)", sourceLocation: sourceLocation)
        let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
        #expect(text.hasSuffix("error: interrupted by the user\n"), "\(text)", sourceLocation: sourceLocation)
    }
}
