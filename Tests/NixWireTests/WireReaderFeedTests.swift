import Testing
@testable import NixWire

/// `WireReader.feed` keeps an incoming array as it is when nothing is unread; bytes still come
/// out in order when arrays and slices are mixed and partly consumed.
struct WireReaderFeedTests {
    @Test func feedsInOrderWhateverTheirKind() throws {
        var r = WireReader()
        r.feed([UInt8]([1, 2, 3, 4]))
        #expect(Array(r.takeAvailable(max: 3)) == [1, 2, 3])
        r.feed([UInt8]([5, 6]))
        r.feed([UInt8]([7, 8, 9, 10, 11, 12])[2...])
        #expect(r.unreadCount == 7)
        #expect(Array(r.takeAvailable()) == [4, 5, 6, 9, 10, 11, 12])
        r.feed([UInt8]([13]))
        #expect(r.takeAll() == [13])
        #expect(r.isAtEnd)
    }

    @Test func aWholeArrayComesBackUncopied() {
        var r = WireReader()
        let chunk = [UInt8](repeating: 9, count: 50_000)
        r.feed(chunk)
        let out = Array(r.takeAvailable())
        #expect(out == chunk)
        #expect(out.withUnsafeBufferPointer { $0.baseAddress } == chunk.withUnsafeBufferPointer { $0.baseAddress })
    }
}
