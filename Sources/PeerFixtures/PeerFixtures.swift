import Foundation

/// Real peers on loopback for the tests and the benchmarks: programs run to completion,
/// temporary directories, and (in the other files) sshd fleets, fixture stores and processes.
public enum PeerFixtures {
    /// The project's root (the folder holding Package.swift).
    public static let projectRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// Full path of an executable on PATH, or nil.
    public static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// True when the real nix CLI is installed (tests that need it skip, saying so, if not).
    public static let hasNix: Bool = which("nix") != nil && which("nix-store") != nil

    /// A fresh temporary directory, removed by the caller when it wants.
    public static func temporaryDirectory(_ label: String = "nb-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The result of running a program.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: String
        public var text: String { String(decoding: stdout, as: UTF8.self) }
        public var trimmed: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    public struct CommandFailed: Error, CustomStringConvertible {
        public var command: [String]
        public var output: Output
        public var description: String {
            "\(command.joined(separator: " ")) exited \(output.status): \(output.stderr)"
        }
    }

    /// Runs a program to completion, feeding `input` on stdin. Arguments are not shell-parsed.
    @discardableResult
    public static func run(_ command: [String], input: Data? = nil, environment: [String: String]? = nil,
                           check: Bool = true) throws -> Output {
        let p = Process()
        if command[0].hasPrefix("/") {
            p.executableURL = URL(fileURLWithPath: command[0])
            p.arguments = Array(command.dropFirst())
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = command
        }
        if let environment {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input == nil ? FileHandle.nullDevice : inp
        try p.run()
        if let input {
            DispatchQueue.global().async {
                inp.fileHandleForWriting.write(input)
                try? inp.fileHandleForWriting.close()
            }
        }
        // Read both pipes concurrently so a chatty stderr cannot block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        let result = Output(status: p.terminationStatus, stdout: outData, stderr: String(decoding: errBox.data, as: UTF8.self))
        if check && result.status != 0 { throw CommandFailed(command: command, output: result) }
        return result
    }

    /// Runs `nix` with the nix-command feature on.
    @discardableResult
    public static func nix(_ args: [String], input: Data? = nil, check: Bool = true) throws -> Output {
        try run(["nix", "--extra-experimental-features", "nix-command"] + args, input: input, check: check)
    }
}
