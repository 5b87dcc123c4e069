// Shared by every fuzz target (compiled into each).

/// The fuzzer's input as bytes, valid only during the call.
@inline(__always)
func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// A property the target checks failed: stop with the reason (libFuzzer keeps the input).
func violated(_ what: String) -> Never {
    fatalError("fuzz property violated: \(what)")
}

/// Splits `bytes` into pieces at the cut points the fuzzer chose: the first byte is a
/// count, then that many bytes give the piece lengths (0 means "one byte"); the rest is the
/// payload. Returns the payload and its pieces.
func fuzzerSplit(_ input: [UInt8]) -> (payload: [UInt8], pieces: [ArraySlice<UInt8>]) {
    guard let n = input.first else { return ([], []) }
    let cuts = Int(n % 16)
    guard input.count > 1 + cuts else { return (Array(input.dropFirst()), [input.dropFirst()]) }
    let lengths = input[1..<(1 + cuts)].map { max(1, Int($0)) }
    let payload = Array(input[(1 + cuts)...])
    var pieces: [ArraySlice<UInt8>] = []
    var start = 0
    for l in lengths where start < payload.count {
        let end = min(payload.count, start + l)
        pieces.append(payload[start..<end])
        start = end
    }
    if start < payload.count { pieces.append(payload[start...]) }
    return (payload, pieces)
}
