@_exported import PeerFixtures
import Foundation

/// What the test targets share beyond `PeerFixtures` (which this module re-exports): where
/// the upstream vectors are, and short names for running real programs.
public enum TestSupport {
    /// The project's root (the folder holding Package.swift).
    public static let projectRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// `../shared/vectors/nix-upstream` relative to the project root, if present.
    public static var upstreamVectors: URL? {
        let candidates = [
            projectRoot.appendingPathComponent("../shared/vectors/nix-upstream").standardized,
            projectRoot.appendingPathComponent("../../shared/vectors/nix-upstream").standardized,
            URL(fileURLWithPath: "/work/shared/vectors/nix-upstream"),
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    public typealias Output = PeerFixtures.Output
    public typealias CommandFailed = PeerFixtures.CommandFailed
    public static func which(_ name: String) -> String? { PeerFixtures.which(name) }
    public static var hasNix: Bool { PeerFixtures.hasNix }
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
