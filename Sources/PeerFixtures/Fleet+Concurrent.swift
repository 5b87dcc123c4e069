import Foundation

extension Fleet {
    /// Starts every command at once in the client environment (each its own process, output
    /// to files, so no pipe fills up), then waits for all of them: none waits for another to
    /// start. `command[0]` is looked up on PATH.
    public func runConcurrently(_ commands: [[String]]) throws -> [PeerFixtures.Output] {
        var running: [(Process, URL, URL)] = []
        for (i, command) in commands.enumerated() {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = command
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let id = UUID().uuidString.prefix(8)
            let out = directory.appendingPathComponent("concurrent-\(i)-\(id).out")
            let err = directory.appendingPathComponent("concurrent-\(i)-\(id).err")
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
            return PeerFixtures.Output(status: p.terminationStatus, stdout: try Data(contentsOf: out),
                                       stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self))
        }
    }
}
