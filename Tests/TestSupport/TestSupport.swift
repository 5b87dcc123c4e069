@_exported import PeerFixtures
import Foundation

/// What the test targets share beyond `PeerFixtures` (which this module re-exports): where
/// the upstream vectors are, and short names for running real programs.
public enum TestSupport {
    public static var projectRoot: URL { PeerFixtures.projectRoot }

    /// `../shared/vectors/nix-upstream` relative to the project root, if present.
    public static var upstreamVectors: URL? {
        let candidates = [
            projectRoot.appendingPathComponent("../shared/vectors/nix-upstream").standardized,
            projectRoot.appendingPathComponent("../../shared/vectors/nix-upstream").standardized,
            URL(fileURLWithPath: "/work/shared/vectors/nix-upstream"),
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// Whether the golden-vector suites run: when the vectors are there, and always under CI
    /// (`CI=true`), where missing vectors must fail rather than skip.
    public static var vectorSuitesRun: Bool {
        upstreamVectors != nil || ProcessInfo.processInfo.environment["CI"] == "true"
    }

    /// A folder under the upstream vectors, or an error saying they are missing.
    public static func requireVectors(_ subpath: String) throws -> URL {
        guard let root = upstreamVectors else { throw VectorsMissing(subpath: subpath) }
        return root.appendingPathComponent(subpath)
    }

    public struct VectorsMissing: Error, CustomStringConvertible {
        public var subpath: String
        public var description: String {
            "the upstream vectors (../shared/vectors/nix-upstream) are missing, so '\(subpath)' cannot be read"
        }
    }

    public typealias Output = PeerFixtures.Output
    public typealias CommandFailed = PeerFixtures.CommandFailed
    public static func which(_ name: String) -> String? { PeerFixtures.which(name) }
    public static func temporaryDirectory(_ label: String = "nb-test") throws -> URL {
        try PeerFixtures.temporaryDirectory(label)
    }
    @discardableResult
    public static func run(_ command: [String], input: Data? = nil, environment: [String: String]? = nil,
                           check: Bool = true) throws -> Output {
        try PeerFixtures.run(command, input: input, environment: environment, check: check)
    }
    @discardableResult
    public static func nix(_ args: [String], input: Data? = nil, check: Bool = true) throws -> Output {
        try PeerFixtures.nix(args, input: input, check: check)
    }
}
