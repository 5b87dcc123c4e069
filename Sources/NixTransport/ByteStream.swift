/// A bidirectional byte stream to a Nix daemon (or any peer): an SSH exec channel, a local
/// process's pipes, or a Unix socket.
///
/// Built for pipelined protocols: one task may be blocked in `read` while other tasks
/// `write`; reads never wait for writes and vice versa. Concurrent `read` calls are served
/// in call order; concurrent `write` calls are sent whole, in call order.
public protocol ByteStream: Sendable {
    /// Up to `maxLength` bytes (at least one), or an empty array at end of stream.
    func read(maxLength: Int) async throws -> [UInt8]
    /// Sends all of `bytes`; returns once the transport accepted them.
    func write(_ bytes: [UInt8]) async throws
    /// Signals end of input to the peer (half close); reading continues.
    func closeWrite() async
    /// Tears the stream down; pending and later calls fail. Safe to call twice.
    func close() async
}

extension ByteStream {
    /// Reads exactly `count` bytes, failing with `StreamError.prematureEOF` at end of stream.
    public func read(exactly count: Int) async throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            let chunk = try await read(maxLength: count - out.count)
            if chunk.isEmpty { throw StreamError.prematureEOF(expected: count, got: out.count) }
            out += chunk
        }
        return out
    }

    /// Reads until end of stream, at most `limit` bytes.
    public func readToEnd(limit: Int = 1 << 30) async throws -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let chunk = try await read(maxLength: 1 << 20)
            if chunk.isEmpty { return out }
            out += chunk
            if out.count > limit { throw StreamError.tooLong(limit: limit) }
        }
    }
}

/// Errors of the stream adapters themselves (not of a transport).
public enum StreamError: Error, Sendable, Equatable, CustomStringConvertible {
    case prematureEOF(expected: Int, got: Int)
    case tooLong(limit: Int)

    public var description: String {
        switch self {
        case let .prematureEOF(expected, got): "stream ended after \(got) of \(expected) expected bytes"
        case let .tooLong(limit): "stream longer than \(limit) bytes"
        }
    }
}
