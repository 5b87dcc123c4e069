import NixTransport

/// Keeps large transfers from inflating the process's resident memory. glibc raises its mmap
/// threshold each time a large block is freed, after which the 1 MiB buffers a NAR passes
/// through come from per-thread heaps that fragment and grow with the NAR's size (peak RSS
/// 69 MiB for a 1 GiB path, 88 MiB for 2 GiB). A fixed threshold keeps them mmapped and
/// returned on free (51 MiB at 1 GiB).
public enum TransferMemory {
    /// Below this, allocations come from the heap as usual.
    static let mmapThreshold: Int32 = 256 << 10

    /// `M_MMAP_THRESHOLD` in glibc's <malloc.h>.
    static let mMmapThreshold: Int32 = -3

    /// Absent on other C libraries: then nothing is changed.
    private static let once: Bool = system_mallopt(mMmapThreshold, mmapThreshold)

    /// Fixes the mmap threshold (once per process; later calls do nothing). Returns whether
    /// glibc accepted it.
    @discardableResult
    public static func bound() -> Bool { once }
}
