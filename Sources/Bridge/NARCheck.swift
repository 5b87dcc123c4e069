import Foundation
import NixCore

/// Checks a NAR against the narHash and narSize its trusted path info promises, and against
/// its content address when it claims one, as its bytes pass by. Bytes beyond narSize fail
/// at once, so a lying peer cannot make us forward (or hold) more than it signed for.
final class NARCheck: @unchecked Sendable {
    let expected: PathInfo
    private let hash = NARHashSink()
    private let contentAddress: ContentAddressVerifier?
    private let lock = NSLock()

    struct Mismatch: Error, CustomStringConvertible {
        var path: String
        var what: String
        var description: String { "NAR for '\(path)' does not match its signed info: \(what)" }
    }

    init(expected: PathInfo) {
        self.expected = expected
        contentAddress = ContentAddressVerifier(expected)
    }

    private var printedPath: String { StoreDirectory.default.print(expected.path) }

    /// Hashes the next bytes; returns the NAR's size before and after them.
    @discardableResult
    func update(_ bytes: [UInt8]) throws -> (before: UInt64, after: UInt64) {
        try lock.withLock {
            let before = hash.narSize
            if before + UInt64(bytes.count) > expected.narSize {
                throw Mismatch(path: printedPath, what: "more than the \(expected.narSize) bytes of its narSize")
            }
            bytes.withUnsafeBytes {
                hash.update($0)
                contentAddress?.update($0)
            }
            return (before, before + UInt64(bytes.count))
        }
    }

    /// Throws unless the bytes seen are exactly the promised NAR.
    func finish() throws {
        try lock.withLock {
            let (narHash, narSize) = hash.finalize()
            guard narSize == expected.narSize else {
                throw Mismatch(path: printedPath, what: "narSize \(narSize), expected \(expected.narSize)")
            }
            guard narHash == expected.narHash else {
                throw Mismatch(path: printedPath, what: "narHash \(narHash), expected \(expected.narHash)")
            }
            do { try contentAddress?.finish() } catch { throw Mismatch(path: printedPath, what: "\(error)") }
        }
    }
}

/// The last chunk of a NAR that is being forwarded, kept back until the whole NAR checked
/// out: without its final bytes the receiving daemon cannot finish parsing the NAR, so it
/// cannot register anything, whatever happens to the connection afterwards.
final class HeldChunk: @unchecked Sendable {
    private let lock = NSLock()
    private var chunk: [UInt8]?

    /// Keeps `bytes` and returns the chunk kept before (now safe to forward).
    func swap(_ bytes: [UInt8]) -> [UInt8]? {
        lock.withLock {
            defer { chunk = bytes }
            return chunk
        }
    }

    func take() -> [UInt8]? {
        lock.withLock {
            defer { chunk = nil }
            return chunk
        }
    }
}

/// Collects a small NAR in memory while it is checked.
final class NARBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var data: [UInt8] = []

    init(capacity: UInt64) { data.reserveCapacity(Int(capacity)) }

    func append(_ bytes: [UInt8]) { lock.withLock { data += bytes } }
    var bytes: [UInt8] { lock.withLock { data } }
}
