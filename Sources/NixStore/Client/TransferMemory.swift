import Glibc

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

    /// <malloc.h> is not in Swift's Glibc module, so `mallopt` is looked up at run time
    /// (absent on other C libraries: then nothing is changed).
    private static let once: Bool = {
        guard let symbol = dlsym(nil, "mallopt") else { return false }
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        return unsafeBitCast(symbol, to: MallOpt.self)(mMmapThreshold, mmapThreshold) == 1
    }()

    /// Fixes the mmap threshold (once per process; later calls do nothing). Returns whether
    /// glibc accepted it.
    @discardableResult
    public static func bound() -> Bool { once }
}
