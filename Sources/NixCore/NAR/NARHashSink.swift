/// Computes a NAR's `narHash` (SHA-256) and `narSize` as its bytes stream past, e.g. as the
/// sink of a `NARWriter` or fed the chunks a `NARReader` consumed.
public final class NARHashSink {
    private let hasher = HashSink(.sha256)
    /// Bytes seen so far.
    public private(set) var narSize: UInt64 = 0

    public init() {}

    public func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bytes)
        narSize += UInt64(bytes.count)
    }

    /// The sink closure form, for `NARWriter(sink:)`.
    public var sink: NARWriter.Sink { { [self] in update($0) } }

    /// Finishes the digest; the sink must not be used afterwards.
    public func finalize() -> (narHash: Hash, narSize: UInt64) {
        (hasher.finalize(), narSize)
    }
}
