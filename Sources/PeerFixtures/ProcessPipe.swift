import Foundation
import NixCore

/// Runs a program while the caller streams bytes into its stdin, so large inputs never sit
/// in memory; stdout and stderr are drained on their own threads meanwhile (else a chatty
/// child fills its pipe and both sides wait forever).
public enum ProcessPipe {
    /// Starts `command` (looked up on PATH unless absolute), hands `produce` a function that
    /// writes to the child's stdin, closes stdin, waits, and throws if the child failed.
    @discardableResult
    public static func run(_ command: [String], produce: (@escaping NARWriter.Sink) throws -> Void) throws -> PeerFixtures.Output {
        // A child that dies early must fail our write with EPIPE, not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = command
        let inp = Pipe(), out = Pipe(), err = Pipe()
        p.standardInput = inp
        p.standardOutput = out
        p.standardError = err
        try p.run()

        final class Box: @unchecked Sendable { var data = Data() }
        let outBox = Box(), errBox = Box()
        let group = DispatchGroup()
        for (pipe, box) in [(out, outBox), (err, errBox)] {
            group.enter()
            DispatchQueue.global().async {
                box.data = pipe.fileHandleForReading.readDataToEndOfFile()
                group.leave()
            }
        }
        let fd = inp.fileHandleForWriting.fileDescriptor
        var writeError: Error?
        do {
            try produce { bytes in try writeAll(fd, bytes) }
        } catch {
            writeError = error
        }
        try? inp.fileHandleForWriting.close()
        group.wait()
        p.waitUntilExit()
        let output = PeerFixtures.Output(status: p.terminationStatus, stdout: outBox.data,
                                        stderr: String(decoding: errBox.data, as: UTF8.self))
        // Our own failure explains the child's (a truncated stream), except a broken pipe,
        // which the child's failure explains.
        if let writeError, (writeError as? POSIXError)?.code != .EPIPE { throw writeError }
        if output.status != 0 { throw PeerFixtures.CommandFailed(command: command, output: output) }
        if let writeError { throw writeError }
        return output
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        guard var base = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = system_write(fd, base, left)
            if n < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            base += n
            left -= n
        }
    }

    /// This process's peak resident set (`VmHWM` of /proc/self/status), in bytes.
    public static func peakResidentBytes() -> UInt64? {
        status("VmHWM")
    }

    /// This process's current resident set (`VmRSS`), in bytes.
    public static func residentBytes() -> UInt64? {
        status("VmRSS")
    }

    /// The largest peak resident set among waited-for children (`getrusage`), in bytes.
    public static func childrenPeakResidentBytes() -> UInt64 {
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        return UInt64(usage.ru_maxrss) * 1024
    }

    private static func status(_ field: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first
            return kb.flatMap { UInt64($0) }.map { $0 * 1024 }
        }
        return nil
    }
}

/// Parses `nix path-info --json [--sigs]` output into `PathInfo`s.
public enum PathInfoJSON {
    public static func parse(_ data: Data, storeDirectory: StoreDirectory = .default) throws -> [PathInfo] {
        guard let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw SigningFixtures.Failure("nix path-info --json: not a list of objects")
        }
        return try list.map { o in
            guard let path = o["path"] as? String, let hash = o["narHash"] as? String,
                  let size = (o["narSize"] as? NSNumber)?.uint64Value else {
                throw SigningFixtures.Failure("nix path-info --json: incomplete entry \(o)")
            }
            let refs = try ((o["references"] as? [String]) ?? []).map { try storeDirectory.parse($0) }
            let deriver = try (o["deriver"] as? String).map { try storeDirectory.parse($0) }
            return PathInfo(path: try storeDirectory.parse(path), deriver: deriver, narHash: try Hash(parsing: hash),
                            references: Set(refs), narSize: size, sigs: Set((o["signatures"] as? [String]) ?? []))
        }
    }
}
