import NixCore
import NixWire

/// Finds the end of the unframed NAR that answers NarFromPath, with NixCore's NAR parser
/// (which also checks the NAR as it streams).
struct NARReaderBoundary: NARBoundaryDetector {
    private var reader = NARReader()

    mutating func consume(_ bytes: ArraySlice<UInt8>) throws -> NARBoundaryProgress {
        let used = try bytes.withUnsafeBytes { try reader.feed($0) { _ in } }
        return NARBoundaryProgress(consumed: used, finished: reader.isComplete)
    }
}
