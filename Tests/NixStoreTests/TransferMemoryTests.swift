import Testing
@testable import NixStore

struct TransferMemoryTests {
    /// glibc accepts the fixed mmap threshold (Linux with glibc is what we run on), and a
    /// second call is harmless.
    @Test func glibcTakesTheFixedMmapThreshold() {
        #expect(TransferMemory.bound())
        #expect(TransferMemory.bound())
        #expect(TransferMemory.mmapThreshold >= 128 << 10, "not below glibc's own default")
    }
}
