import NixCore

/// Writes a `nix-store --export` stream, as upstream Nix's `Store::exportPaths` does, for
/// `nix-store --import` to read. For each path: `1`, the NAR, `0x4558494e` ("NIXE"), the full
/// store path, the references (a count then each full path), the deriver (empty for none) and
/// `0` (no legacy signature); after the last path, `0`. Numbers are u64 little endian; strings
/// are a u64 length, the bytes and zero padding to a multiple of 8 (the worker protocol's
/// framing).
///
/// `nix-store --import` registers each path as it arrives, so every reference must be valid
/// already or come earlier in the stream (a path may refer to itself).
///
/// ```swift
/// let stream = ExportStream(sink: { try out.write($0) })
/// let info = try stream.add(path: p, references: []) { nar in
///     try nar.file(executable: false, contents: Array("hi\n".utf8))
/// }
/// try stream.finish()
/// ```
public final class ExportStream {
    /// The export magic Nix writes after each NAR.
    public static let exportMagic: UInt64 = 0x4558_494e

    public let storeDirectory: StoreDirectory
    private let sink: NARWriter.Sink
    /// Framing bytes waiting for the sink; NAR bytes pass through `NARWriter`'s own buffer.
    private var buffer: [UInt8] = []
    private var finished = false
    /// Bytes handed to the sink or buffered so far.
    public private(set) var bytesWritten: UInt64 = 0
    /// Paths written so far.
    public private(set) var pathCount = 0

    public init(storeDirectory: StoreDirectory = .default, sink: @escaping NARWriter.Sink) {
        self.storeDirectory = storeDirectory
        self.sink = sink
        buffer.reserveCapacity(1 << 16)
    }

    /// Writes one path whose NAR `body` produces, returning its `PathInfo` (narHash and narSize
    /// computed from the bytes as they were written).
    @discardableResult
    public func add(path: StorePath, references: [StorePath], deriver: StorePath? = nil,
                    nar body: (NARWriter) throws -> Void) throws -> PathInfo {
        precondition(!finished, "ExportStream: add after finish")
        writeNumber(1)
        try flush()
        let hash = NARHashSink()
        let writer = NARWriter { [self] bytes in
            hash.update(bytes)
            try sink(bytes)
            bytesWritten += UInt64(bytes.count)
        }
        try body(writer)
        try writer.finish()
        writeNumber(ExportStream.exportMagic)
        writeString(storeDirectory.print(path))
        let sorted = Set(references).sorted()
        writeNumber(UInt64(sorted.count))
        for r in sorted { writeString(storeDirectory.print(r)) }
        writeString(deriver.map(storeDirectory.print) ?? "")
        writeNumber(0)
        if buffer.count >= 1 << 16 { try flush() }
        pathCount += 1
        let (narHash, narSize) = hash.finalize()
        return PathInfo(path: path, deriver: deriver, narHash: narHash, references: Set(sorted), narSize: narSize)
    }

    /// Ends the stream and hands every buffered byte to the sink.
    public func finish() throws {
        precondition(!finished, "ExportStream: finished twice")
        writeNumber(0)
        try flush()
        finished = true
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try sink($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeNumber(_ n: UInt64) {
        withUnsafeBytes(of: n.littleEndian) { buffer.append(contentsOf: $0) }
        bytesWritten += 8
    }

    private func writeString(_ s: String) {
        let bytes = Array(s.utf8)
        writeNumber(UInt64(bytes.count))
        buffer += bytes
        let pad = NARFormat.padding(UInt64(bytes.count))
        buffer += repeatElement(0, count: pad)
        bytesWritten += UInt64(bytes.count + pad)
    }
}
