/// Serialises a file-system object as a NAR, push style: the caller reports the tree in NAR
/// order (see `NAREvent`) and the writer emits Nix's exact bytes into `sink`, buffering small
/// strings and passing large content chunks straight through. It refuses anything Nix's
/// parser would refuse: unsorted or invalid entry names, bad symlink targets, nesting beyond
/// `NARFormat.maxDepth`, and content sizes that differ from the declared one.
///
/// ```swift
/// let nar = try NARWriter.collect { w in
///     try w.directory()
///     try w.entry(name: "hello")
///     try w.file(executable: false, contents: Array("hi\n".utf8))
///     try w.endDirectory()
/// }
/// ```
public final class NARWriter {
    /// Receives NAR bytes; the buffer is only valid during the call.
    public typealias Sink = (UnsafeRawBufferPointer) throws -> Void

    private enum State {
        case expectingNode
        case inFile(size: UInt64, written: UInt64)
        case inDirectory
        case finished
    }

    private static let bufferSize = 1 << 16
    private static let passThroughSize = 1 << 14

    private let sink: Sink
    private var buffer: [UInt8] = []
    private var state = State.expectingNode
    /// Last entry name of each open directory (nil before the first entry).
    private var previousNames: [[UInt8]?] = []
    /// Bytes produced so far (including those still buffered).
    public private(set) var bytesWritten: UInt64 = 0

    public init(sink: @escaping Sink) {
        self.sink = sink
        buffer.reserveCapacity(NARWriter.bufferSize)
        writeString(Array(NARFormat.magic.utf8))
    }

    /// Runs `body` with a writer collecting into memory and returns the whole NAR.
    public static func collect(_ body: (NARWriter) throws -> Void) throws -> [UInt8] {
        final class Box { var bytes: [UInt8] = [] }
        let box = Box()
        let writer = NARWriter { box.bytes.append(contentsOf: $0) }
        try body(writer)
        try writer.finish()
        return box.bytes
    }

    // MARK: Events

    /// Starts a regular file of exactly `size` content bytes, to be given by `contents` calls.
    public func regularFile(executable: Bool, size: UInt64) throws {
        try expectNode("a regular file")
        writeTags("(", "type", "regular")
        if executable { writeTags("executable", "") }
        writeTags("contents")
        writeNumber(size)
        state = .inFile(size: size, written: 0)
    }

    public func contents(_ chunk: UnsafeRawBufferPointer) throws {
        guard case let .inFile(size, written) = state else { throw misuse("contents outside a regular file") }
        let total = written + UInt64(chunk.count)
        guard total <= size else { throw NARError(offset: bytesWritten, .sizeMismatch(declared: size, written: total)) }
        state = .inFile(size: size, written: total)
        if chunk.count >= NARWriter.passThroughSize {
            try flush()
            try sink(chunk)
            bytesWritten += UInt64(chunk.count)
        } else {
            append(chunk)
            if buffer.count >= NARWriter.bufferSize { try flush() }
        }
    }

    public func contents<C: ContiguousBytes>(_ bytes: C) throws {
        try bytes.withUnsafeBytes { try contents($0) }
    }

    /// Ends the current file; all declared bytes must have been given.
    public func endFile() throws {
        guard case let .inFile(size, written) = state else { throw misuse("end of file outside a regular file") }
        guard written == size else { throw NARError(offset: bytesWritten, .sizeMismatch(declared: size, written: written)) }
        writePadding(size)
        writeTags(")")
        try nodeDone()
    }

    /// A whole regular file at once.
    public func file<C: ContiguousBytes>(executable: Bool, contents bytes: C) throws {
        let size = bytes.withUnsafeBytes { $0.count }
        try regularFile(executable: executable, size: UInt64(size))
        try contents(bytes)
        try endFile()
    }

    public func symlink(target: [UInt8]) throws {
        try expectNode("a symlink")
        if NARFormat.targetProblem(target) != nil { throw NARError(offset: bytesWritten, .invalidSymlinkTarget(target)) }
        writeTags("(", "type", "symlink", "target")
        writeString(target)
        writeTags(")")
        try nodeDone()
    }

    public func symlink(target: String) throws { try symlink(target: Array(target.utf8)) }

    /// Starts a directory; follow with `entry`+node pairs in sorted order, then `endDirectory`.
    public func directory() throws {
        try expectNode("a directory")
        writeTags("(", "type", "directory")
        previousNames.append(nil)
        state = .inDirectory
    }

    /// Names the next node of the current directory. Names must be valid and strictly
    /// increasing byte-wise, as Nix sorts them.
    public func entry(name: [UInt8]) throws {
        guard case .inDirectory = state, let previous = previousNames.last else {
            throw misuse("entry outside a directory")
        }
        if NARFormat.nameProblem(name) != nil { throw NARError(offset: bytesWritten, .invalidName(name)) }
        if let previous, !NARFormat.precedes(previous, name) {
            throw NARError(offset: bytesWritten, .notSorted(name: name, previous: previous))
        }
        if previousNames.count >= NARFormat.maxDepth {
            throw NARError(offset: bytesWritten, .tooDeep(max: NARFormat.maxDepth))
        }
        previousNames[previousNames.count - 1] = name
        writeTags("entry", "(", "name")
        writeString(name)
        writeTags("node")
        state = .expectingNode
    }

    public func entry(name: String) throws { try entry(name: Array(name.utf8)) }

    public func endDirectory() throws {
        guard case .inDirectory = state else { throw misuse("end of directory outside a directory") }
        writeTags(")")
        previousNames.removeLast()
        try nodeDone()
    }

    /// Applies one event (as `NARReader` emits them), so a parsed NAR can be re-serialised.
    public func write(_ event: NAREvent) throws {
        switch event {
        case let .regularFile(executable, size): try regularFile(executable: executable, size: size)
        case let .contents(chunk): try contents(chunk)
        case .endFile: try endFile()
        case let .symlink(target): try symlink(target: target)
        case .directory: try directory()
        case let .entry(name): try entry(name: name)
        case .endDirectory: try endDirectory()
        }
    }

    /// Checks the NAR is complete and hands the buffered tail to the sink.
    public func finish() throws {
        guard case .finished = state else { throw misuse("NAR is not complete") }
        try flush()
    }

    // MARK: Encoding

    private func expectNode(_ what: String) throws {
        guard case .expectingNode = state else { throw misuse("\(what) is not expected here") }
    }

    private func nodeDone() throws {
        if previousNames.isEmpty {
            state = .finished
        } else {
            writeTags(")")  // closes the directory entry
            state = .inDirectory
        }
        if buffer.count >= NARWriter.bufferSize { try flush() }
    }

    private func misuse(_ what: String) -> NARError {
        NARError(offset: bytesWritten, .misuse("NAR writer: " + what))
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try sink($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        bytesWritten += UInt64(bytes.count)
    }

    private func writeNumber(_ n: UInt64) {
        withUnsafeBytes(of: n.littleEndian) { append($0) }
    }

    private func writePadding(_ length: UInt64) {
        let zeros: UInt64 = 0
        withUnsafeBytes(of: zeros) { append(UnsafeRawBufferPointer(rebasing: $0.prefix(NARFormat.padding(length)))) }
    }

    private func writeString(_ bytes: [UInt8]) {
        writeNumber(UInt64(bytes.count))
        bytes.withUnsafeBytes { append($0) }
        writePadding(UInt64(bytes.count))
    }

    private func writeTags(_ tags: StaticString...) {
        for tag in tags {
            writeNumber(UInt64(tag.utf8CodeUnitCount))
            append(UnsafeRawBufferPointer(start: tag.utf8Start, count: tag.utf8CodeUnitCount))
            writePadding(UInt64(tag.utf8CodeUnitCount))
        }
    }
}
