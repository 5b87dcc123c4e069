import NixTransport
import Synchronization

/// Cuts off a client that stops reading a NAR: once a write to it has waited `limit`, its
/// stream is closed, so the write fails and the transfer behind it ends (with the builder's
/// connection it came over). Writes go out in pieces of at most `piece`, so a client counts
/// as reading while it takes one in `limit`.
final class ClientStallWatch: Sendable {
    let limit: Duration
    private let state = Mutex<(since: ContinuousClock.Instant?, fired: Bool)>((nil, false))

    static let piece = 64 << 10

    /// The client read nothing for `seconds`.
    struct Stalled: Error, CustomStringConvertible {
        var seconds: Int64
        var description: String { "the client read nothing for \(seconds) s (stalled-download-timeout): disconnected" }
    }

    init(limit: Duration) { self.limit = limit }

    func write(_ bytes: [UInt8], to stream: any ByteStream) async throws {
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + Self.piece)
            state.withLock { $0.since = .now }
            do {
                try await stream.write(start == 0 && end == bytes.count ? bytes : Array(bytes[start..<end]))
            } catch {
                if state.withLock({ $0.fired }) { throw Stalled(seconds: limit.components.seconds) }
                throw error
            }
            state.withLock { $0.since = nil }
            start = end
        }
    }

    /// Until cancelled: closes `stream` once a write waited `limit` (looking a few times per
    /// limit, so the cut comes at most a quarter of it late).
    func watch(_ stream: any ByteStream) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: max(limit / 4, .milliseconds(10)))
                let stalled = state.withLock { s in
                    guard !s.fired, let since = s.since, ContinuousClock.now - since >= limit else { return false }
                    s.fired = true
                    return true
                }
                if stalled { return await stream.close() }
            }
        }
    }
}
