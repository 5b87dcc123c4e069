import Foundation
import NixCore

/// A NAR being received into a temporary file, checked against the narHash and narSize
/// the trusted path info promises. Bytes beyond narSize fail at once (a lying peer cannot
/// fill the disk); the file is removed whatever happens.
final class StagedNAR: @unchecked Sendable {
    let path: String
    private let expected: PathInfo
    private let handle: FileHandle
    private let hash = NARHashSink()
    private let lock = NSLock()

    struct Mismatch: Error, CustomStringConvertible {
        var path: String
        var what: String
        var description: String { "NAR for '\(path)' does not match its signed info: \(what)" }
    }

    init(directory: String, expected: PathInfo) throws {
        self.expected = expected
        path = directory + "/nix-bridge-nar-\(expected.path.hashPart)-\(UUID().uuidString.prefix(8))"
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let h = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        handle = h
    }

    /// Appends bytes to the file (nothing is kept in memory); returns the NAR's size before
    /// and after them.
    @discardableResult
    func write(_ bytes: [UInt8]) throws -> (before: UInt64, after: UInt64) {
        try lock.withLock {
            let before = hash.narSize
            if hash.narSize + UInt64(bytes.count) > expected.narSize {
                throw Mismatch(path: StoreDirectory.default.print(expected.path),
                               what: "more than the \(expected.narSize) bytes of its narSize")
            }
            bytes.withUnsafeBytes { hash.update($0) }
            try handle.write(contentsOf: bytes)
            return (before, before + UInt64(bytes.count))
        }
    }

    func finish() throws {
        try lock.withLock {
            try handle.close()
            let (narHash, narSize) = hash.finalize()
            let p = StoreDirectory.default.print(expected.path)
            guard narSize == expected.narSize else {
                throw Mismatch(path: p, what: "narSize \(narSize), expected \(expected.narSize)")
            }
            guard narHash == expected.narHash else {
                throw Mismatch(path: p, what: "narHash \(narHash), expected \(expected.narHash)")
            }
        }
    }

    func remove() {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: path)
    }
}
