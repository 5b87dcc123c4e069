/// The framed data of a streamed request (AddToStoreNar, AddMultipleToStore) as it arrives
/// from the client, handed from the server loop to the backend with little buffering: the
/// loop waits while a few chunks are unread, so a NAR never sits whole in memory.
public actor IncomingData {
    private var buffer: [[UInt8]] = []
    private var ended = false
    /// The backend stopped reading (it failed): what still arrives is dropped.
    private var abandoned = false
    /// The client went away before the data ended.
    private var cut = false
    private var reader: CheckedContinuation<[UInt8]?, any Error>?
    private var writer: CheckedContinuation<Void, Never>?
    private let capacity = 4

    public init() {}

    /// Why `next` throws: the client's connection ended in the middle of the data.
    public struct Cut: Error, CustomStringConvertible {
        public var description: String { "the client's connection ended before the data did" }
    }

    /// The next chunk, or nil once the data has ended; throws `Cut` if it never will.
    public func next() async throws -> [UInt8]? {
        if !buffer.isEmpty {
            let chunk = buffer.removeFirst()
            if let w = writer {
                writer = nil
                w.resume()
            }
            return chunk
        }
        if cut { throw Cut() }
        if ended { return nil }
        return try await withCheckedThrowingContinuation { reader = $0 }
    }

    /// Hands over a chunk; waits while `capacity` chunks are unread.
    func send(_ chunk: [UInt8]) async {
        guard !abandoned, !chunk.isEmpty else { return }
        if let r = reader {
            reader = nil
            r.resume(returning: chunk)
            return
        }
        buffer.append(chunk)
        if buffer.count >= capacity {
            await withCheckedContinuation { writer = $0 }
        }
    }

    /// The data ended.
    func finish() {
        ended = true
        if let r = reader {
            reader = nil
            r.resume(returning: nil)
        }
    }

    /// The client went away: the backend's next read throws.
    func cutShort() {
        cut = true
        if let r = reader {
            reader = nil
            r.resume(throwing: Cut())
        }
    }

    /// The backend is done with it (answered or failed): drop the rest.
    func abandon() {
        abandoned = true
        buffer = []
        if let w = writer {
            writer = nil
            w.resume()
        }
    }
}
