import Testing
@testable import NixTransport

/// The SSH read-ahead queue: bytes come out in order whatever the read sizes, and a read of
/// at least a whole chunk gets that chunk's array itself (no copy on the large-NAR path).
struct SSHReadAheadTests {
    static func address(_ a: [UInt8]) -> UInt { a.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } }

    @Test func wholeChunksPassThroughUncopied() {
        var s = SSHStreamState()
        let first = [UInt8](repeating: 1, count: 100_000), second = [UInt8](repeating: 2, count: 70_000)
        s.append(first)
        s.append(second)
        s.append([])
        #expect(s.buffered == 170_000)
        let a = s.take(1 << 20)
        #expect(a == first && Self.address(a) == Self.address(first))
        #expect(s.buffered == 70_000)
        let b = s.take(70_000)
        #expect(b == second && Self.address(b) == Self.address(second))
        #expect(s.buffered == 0 && s.take(10).isEmpty)
    }

    @Test func partialReadsKeepOrderAcrossChunks() {
        var s = SSHStreamState()
        let bytes = (0..<1_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        for start in stride(from: 0, to: bytes.count, by: 300) { s.append(Array(bytes[start..<min(start + 300, bytes.count)])) }
        var out: [UInt8] = []
        for size in [1, 299, 450, 7, 1_000] { out += s.take(size) }
        #expect(out == bytes)
        #expect(s.buffered == 0)
    }

    @Test func immediateReadReportsEOFAfterTheData() {
        var s = SSHStreamState()
        s.append([1, 2, 3])
        s.eofReceived = true
        #expect((try? s.immediateRead(2)?.get()) == [1, 2])
        #expect((try? s.immediateRead(2)?.get()) == [3])
        #expect((try? s.immediateRead(2)?.get()) == [])
    }
}
