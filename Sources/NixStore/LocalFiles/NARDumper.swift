import NixCore

/// Serialises a local file, symlink or directory tree as a NAR, exactly as `nix-store --dump`
/// does, streaming file contents in `chunkSize` pieces so memory stays bounded whatever the
/// tree's size. Directory entries are sorted byte-wise; only the owner-executable bit counts.
public struct NARDumper {
    /// Read size for file contents.
    public var chunkSize: Int

    public init(chunkSize: Int = 1 << 20) {
        precondition(chunkSize > 0)
        self.chunkSize = chunkSize
    }

    /// Writes the NAR of `path` into `writer` (which must be expecting a node) and finishes it.
    public func dump(path: String, to writer: NARWriter) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        try dumpNode(Array(path.utf8), writer, buffer)
        try writer.finish()
    }

    /// Streams the NAR of `path` into `sink`; returns its size.
    @discardableResult
    public func dump(path: String, sink: @escaping NARWriter.Sink) throws -> UInt64 {
        let writer = NARWriter(sink: sink)
        try dump(path: path, to: writer)
        return writer.bytesWritten
    }

    /// The `narHash` (SHA-256) and `narSize` of `path`, without holding the NAR in memory.
    public func narHash(path: String) throws -> (narHash: Hash, narSize: UInt64) {
        let hashSink = NARHashSink()
        try dump(path: path, sink: hashSink.sink)
        return hashSink.finalize()
    }

    private func dumpNode(_ path: [UInt8], _ writer: NARWriter, _ buffer: UnsafeMutableRawBufferPointer) throws {
        let status = try LocalFileSystem.lstatus(path)
        switch status.kind {
        case .regular:
            try dumpFile(path, writer, buffer)
        case .symlink:
            try writer.symlink(target: LocalFileSystem.readLink(path))
        case .directory:
            try writer.directory()
            let names = try LocalFileSystem.listDirectory(path).sorted(by: NARFormat.precedes)
            for name in names {
                try writer.entry(name: name)
                try dumpNode(path + [0x2f] + name, writer, buffer)
            }
            try writer.endDirectory()
        case .other:
            throw LocalFileError("dumping", path: LocalFileSystem.display(path), reason: "file has an unsupported type")
        }
    }

    private func dumpFile(_ path: [UInt8], _ writer: NARWriter, _ buffer: UnsafeMutableRawBufferPointer) throws {
        let fd = try LocalFileSystem.openForReading(path)
        defer { try? LocalFileSystem.close(fd, path: path) }
        // Size and mode from the open file, so a rename in between cannot mix two files.
        let status = try LocalFileSystem.fstatus(fd, path: path)
        try writer.regularFile(executable: status.executable, size: status.size)
        var left = status.size
        while left > 0 {
            let want = Int(min(UInt64(buffer.count), left))
            let n = try LocalFileSystem.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]), path: path)
            if n == 0 {
                throw LocalFileError("dumping", path: LocalFileSystem.display(path), reason: "file shrank while being read")
            }
            try writer.contents(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            left -= UInt64(n)
        }
        try writer.endFile()
    }
}
