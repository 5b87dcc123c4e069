/// Finds where a NAR ends in a byte stream. NarFromPath replies with an unframed NAR, so only
/// a NAR parser can tell where it stops; the connection hands it the bytes as they arrive.
public protocol NARBoundaryDetector: Sendable {
    /// Takes the next bytes of the stream. Returns how many of them belong to the NAR: all of
    /// them while it goes on, fewer only if it ended inside `bytes`; `finished` once it ended.
    /// Throws when the bytes are not a valid NAR.
    mutating func consume(_ bytes: ArraySlice<UInt8>) throws -> NARBoundaryProgress
}

public struct NARBoundaryProgress: Sendable, Hashable {
    public var consumed: Int
    public var finished: Bool

    public init(consumed: Int, finished: Bool) {
        self.consumed = consumed
        self.finished = finished
    }
}
