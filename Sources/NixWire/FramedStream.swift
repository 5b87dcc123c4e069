/// Framed data streams (AddToStoreNar from 1.23, AddMultipleToStore, AddToStore from 1.25):
/// frames of u64 length + that many bytes, no padding, ended by a zero-length frame.
public enum FramedStream {
    /// Default frame size when encoding (Nix's FramedSink sends its 32 KiB buffer).
    public static let defaultFrameSize = 32 * 1024

    /// Encodes `data` as frames of at most `frameSize` bytes plus the terminating 0.
    public static func encode<C: Collection>(_ data: C, frameSize: Int = defaultFrameSize, into w: inout WireWriter)
    where C.Element == UInt8, C.Index == Int {
        precondition(frameSize > 0)
        var i = data.startIndex
        while i < data.endIndex {
            let end = Swift.min(i + frameSize, data.endIndex)
            w.writeU64(UInt64(end - i))
            w.writeRaw(data[i..<end])
            i = end
        }
        w.writeU64(0)
    }

    /// One frame holding `data` (non-empty), for a stream sent piece by piece.
    public static func frame(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        precondition(!data.isEmpty, "an empty frame ends the stream")
        var w = WireWriter(capacity: data.count + 8)
        w.writeU64(UInt64(data.count))
        w.writeRaw(data)
        return w.bytes
    }

    /// The empty frame that ends a stream.
    public static let end: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]

    public static func encode(_ data: [UInt8], frameSize: Int = defaultFrameSize) -> [UInt8] {
        var w = WireWriter(capacity: data.count + data.count / frameSize * 8 + 16)
        encode(data, frameSize: frameSize, into: &w)
        return w.bytes
    }
}

/// Incremental decoder of a framed stream: hands out data as soon as it arrives, without
/// waiting for whole frames, and says when the terminating empty frame was read.
public struct FramedStreamDecoder: Sendable {
    public enum Event: Equatable, Sendable {
        case data([UInt8])
        case end
    }

    /// Bytes left in the current frame.
    private var remaining = 0
    public private(set) var finished = false

    public init() {}

    /// Reads what the reader has: nil when more input is needed.
    public mutating func next(from r: inout WireReader) throws(WireError) -> Event? {
        precondition(!finished, "framed stream already ended")
        if remaining == 0 {
            guard let n = try r.attempt({ (r: inout WireReader) throws(WireError) in try r.readU64("frame length") }) else { return nil }
            if n == 0 {
                finished = true
                return .end
            }
            guard n <= UInt64(r.limits.maxStringLength) else {
                throw .stringTooLong(reading: "frame length", length: n, limit: r.limits.maxStringLength)
            }
            remaining = Int(n)
        }
        let chunk = r.takeAvailable(max: remaining)
        if chunk.isEmpty { return nil }
        remaining -= chunk.count
        return .data(Array(chunk))
    }

    /// Decodes a whole framed stream held in `r`; nil if it is not complete yet (nothing consumed).
    public static func decodeAll(from r: inout WireReader) throws(WireError) -> [UInt8]? {
        try r.attempt { (r: inout WireReader) throws(WireError) -> [UInt8] in
            var out = [UInt8]()
            while true {
                let n = try r.readU64("frame length")
                if n == 0 { return out }
                guard n <= UInt64(r.limits.maxStringLength) else {
                    throw .stringTooLong(reading: "frame length", length: n, limit: r.limits.maxStringLength)
                }
                guard r.unreadCount >= Int(n) else { throw .truncated(reading: "frame data") }
                out.append(contentsOf: r.takeAvailable(max: Int(n)))
            }
        }
    }
}
