import NixCore

/// NARReader.feed over fuzzer-chosen chunks: a NAR it accepts re-encodes through NARWriter
/// byte for byte, and the chunking never changes the outcome.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNARReader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let (payload, pieces) = fuzzerSplit(fuzzInput(data, size))
    func parse(_ chunks: [ArraySlice<UInt8>]) -> [UInt8]? {
        var reader = NARReader()
        var out: [UInt8] = []
        let writer = NARWriter { out.append(contentsOf: $0) }
        do {
            var used = 0
            for c in chunks {
                let n = try reader.feed(c) { try writer.write($0) }
                used += n
                if n < c.count { break }
            }
            try reader.finish()
            guard used == payload.count else { return nil } // trailing bytes: not a NAR alone
            try writer.finish()
        } catch {
            return nil
        }
        return out
    }
    let whole = parse([payload[...]])
    let split = parse(pieces)
    if whole != split { violated("chunking changed the outcome") }
    if let whole, whole != payload { violated("accepted NAR does not re-encode byte for byte") }
    return 0
}
