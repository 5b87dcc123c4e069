import Synchronization

/// Hands a NAR's chunks from the fleet's transfer to the response body one at a time: the
/// transfer waits until the body took the chunk it offers, so a slow client slows its
/// builder down and holds at most one chunk here. It also lets the response wait for the
/// first chunk before it commits to a status: a NAR that no builder could start sending is
/// an error status, not a 200 cut short.
final class NARHandoff: Sendable {
    private struct State {
        var chunk: [UInt8]?
        var ended: Result<Void, any Error>?
        /// The body, waiting for a chunk or the end.
        var taker: CheckedContinuation<[UInt8]?, any Error>?
        /// The transfer, waiting for its chunk to be taken.
        var giver: CheckedContinuation<Void, any Error>?
        var cancelled = false
    }

    /// Why the body stopped taking chunks (the client went away).
    struct Abandoned: Error, CustomStringConvertible {
        var description: String { "the client stopped reading" }
    }

    private let state = Mutex(State())

    /// Offers a chunk; returns once the body took it. Throws once the body is gone.
    func give(_ bytes: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let resume: (() -> Void)? = state.withLock { s in
                if s.cancelled { return { c.resume(throwing: Abandoned()) } }
                if let taker = s.taker {
                    s.taker = nil
                    return {
                        taker.resume(returning: bytes)
                        c.resume()
                    }
                }
                s.chunk = bytes
                s.giver = c
                return nil
            }
            resume?()
        }
    }

    /// The transfer ended (with an error, or not).
    func end(_ result: Result<Void, any Error>) {
        let taker: CheckedContinuation<[UInt8]?, any Error>? = state.withLock { s in
            s.ended = result
            defer { s.taker = nil }
            return s.chunk == nil ? s.taker : nil
        }
        taker?.resume(with: result.map { nil })
    }

    /// The next chunk; nil at the end; throws what ended the transfer.
    func take() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[UInt8]?, any Error>) in
            let resume: (() -> Void)? = state.withLock { s in
                if let chunk = s.chunk {
                    s.chunk = nil
                    let giver = s.giver
                    s.giver = nil
                    return {
                        c.resume(returning: chunk)
                        giver?.resume()
                    }
                }
                if let ended = s.ended { return { c.resume(with: ended.map { nil }) } }
                s.taker = c
                return nil
            }
            resume?()
        }
    }

    /// The body is gone: the transfer's next `give` throws (and a waiting one at once).
    func cancel() {
        let giver: CheckedContinuation<Void, any Error>? = state.withLock { s in
            s.cancelled = true
            s.chunk = nil
            defer { s.giver = nil }
            return s.giver
        }
        giver?.resume(throwing: Abandoned())
    }
}
