/// An incremental NAR parser: feed it chunks of any size (one byte or megabytes) and it
/// reports `NAREvent`s, passing file contents through without buffering them. It stops at the
/// NAR's last byte, so a caller reading an unframed NAR from a stream (as `NarFromPath`
/// sends it) learns where the NAR ends and which bytes of the chunk follow it.
///
/// It enforces upstream Nix's `parseDump` rules: the magic, the grammar, sorted unique valid
/// names, non-empty NUL-free symlink targets, zero padding, `NARFormat`'s length bounds and
/// nesting depth. Errors are `NARError`s carrying the offset of the offending string.
public struct NARReader: Sendable {
    /// The next string's role in the grammar.
    private enum Expect {
        case magic, open, typeTag, typeValue
        case fileTag, executableValue, contentsTag, fileClose
        case targetTag, target, nodeClose
        case entryOrClose, entryOpen, nameTag, name, nodeTag, entryClose
        case done
    }

    /// What the bytes being collected are.
    private enum Unit {
        case length
        case string(length: Int)
        case contentsSize
        case contents(remaining: UInt64)
        case contentsPadding
        case done
    }

    private var expect = Expect.magic
    private var unit = Unit.length
    /// Bytes of the current unit collected so far, and how many it needs.
    private var pending: [UInt8] = []
    private var need = 8
    private var unitStart: UInt64 = 0
    private var executable = false
    private var contentsSize: UInt64 = 0
    /// Last entry name of each open directory.
    private var previousNames: [[UInt8]?] = []
    private var pendingName: [UInt8] = []
    private var failure: NARError?

    /// Bytes of NAR consumed so far.
    public private(set) var bytesConsumed: UInt64 = 0

    public init() {
        pending.reserveCapacity(64)
    }

    /// True once the NAR's last byte has been consumed.
    public var isComplete: Bool {
        if case .done = expect { return true }
        return false
    }

    /// Parses `chunk`, calling `handler` for each event. Returns how many bytes of `chunk`
    /// belong to the NAR: fewer than `chunk.count` only when the NAR ended inside it (the
    /// rest are trailing bytes for the caller). After an error the reader stays failed.
    @discardableResult
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ handler: (NAREvent) throws -> Void) throws -> Int {
        if let failure { throw failure }
        do {
            return try consume(chunk, handler)
        } catch let e as NARError {
            failure = e
            throw e
        } catch {
            // The handler failed mid-event: the parse cannot resume from here.
            failure = NARError(offset: bytesConsumed, .misuse("NAR reader: stopped by its handler: \(error)"))
            throw error
        }
    }

    @discardableResult
    public mutating func feed<C: ContiguousBytes>(_ bytes: C, _ handler: (NAREvent) throws -> Void) throws -> Int {
        try bytes.withUnsafeBytes { try feed($0, handler) }
    }

    /// Call at the end of input: throws when the NAR is incomplete.
    public func finish() throws(NARError) {
        if let failure { throw failure }
        guard isComplete else { throw NARError(offset: bytesConsumed, .truncated(expected: expectation)) }
    }

    /// Parses a whole NAR held in memory, refusing trailing bytes; returns its size.
    @discardableResult
    public static func validate<C: ContiguousBytes>(_ bytes: C, _ handler: (NAREvent) throws -> Void = { _ in }) throws -> UInt64 {
        var reader = NARReader()
        let (used, total) = try bytes.withUnsafeBytes { ($0.count > 0 ? try reader.feed($0, handler) : 0, $0.count) }
        try reader.finish()
        if used < total { throw NARError(offset: reader.bytesConsumed, .trailingBytes(count: total - used)) }
        return reader.bytesConsumed
    }

    // MARK: Byte level

    private mutating func consume(_ chunk: UnsafeRawBufferPointer, _ handler: (NAREvent) throws -> Void) throws -> Int {
        var i = 0
        while i < chunk.count {
            switch unit {
            case .done:
                return i
            case let .contents(remaining):
                let n = Int(min(remaining, UInt64(chunk.count - i)))
                try handler(.contents(UnsafeRawBufferPointer(rebasing: chunk[i..<(i + n)])))
                i += n
                bytesConsumed += UInt64(n)
                if remaining == UInt64(n) {
                    try contentsEnded(handler)
                } else {
                    unit = .contents(remaining: remaining - UInt64(n))
                }
            default:
                let n = min(need - pending.count, chunk.count - i)
                pending.append(contentsOf: chunk[i..<(i + n)])
                i += n
                bytesConsumed += UInt64(n)
                if pending.count == need { try unitCollected(handler) }
            }
        }
        return i
    }

    private mutating func startUnit(_ u: Unit, need n: Int) {
        unit = u
        need = n
        pending.removeAll(keepingCapacity: true)
        unitStart = bytesConsumed
    }

    private var pendingNumber: UInt64 {
        pending.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    private mutating func unitCollected(_ handler: (NAREvent) throws -> Void) throws {
        switch unit {
        case .length:
            let length = pendingNumber
            let start = unitStart
            try checkLength(length, at: start)
            if length == 0 {
                startUnit(.length, need: 8)
                try handleString([], at: start, handler)
            } else {
                let n = Int(length)
                startUnit(.string(length: n), need: n + NARFormat.padding(length))
                unitStart = start
            }
        case let .string(length):
            let start = unitStart
            if pending[length...].contains(where: { $0 != 0 }) {
                throw NARError(offset: start + 8 + UInt64(length), .nonZeroPadding)
            }
            let s = Array(pending[..<length])
            startUnit(.length, need: 8)
            try handleString(s, at: start, handler)
        case .contentsSize:
            contentsSize = pendingNumber
            try handler(.regularFile(executable: executable, size: contentsSize))
            if contentsSize == 0 {
                try contentsEnded(handler)
            } else {
                startUnit(.contents(remaining: contentsSize), need: 0)
            }
        case .contentsPadding:
            if pending.contains(where: { $0 != 0 }) { throw NARError(offset: unitStart, .nonZeroPadding) }
            expect = .fileClose
            startUnit(.length, need: 8)
        case .contents, .done:
            break
        }
    }

    private mutating func contentsEnded(_ handler: (NAREvent) throws -> Void) throws {
        let pad = NARFormat.padding(contentsSize)
        if pad == 0 {
            expect = .fileClose
            startUnit(.length, need: 8)
        } else {
            startUnit(.contentsPadding, need: pad)
        }
    }

    /// Refuses a length prefix above the bound for what comes next, before reading it.
    private func checkLength(_ length: UInt64, at offset: UInt64) throws(NARError) {
        switch expect {
        case .magic:
            if length != UInt64(NARFormat.magic.utf8.count) { throw NARError(offset: offset, .notANAR) }
        case .executableValue:
            if length != 0 { throw NARError(offset: offset, .executableMarkerNotEmpty) }
        case .name:
            if length > UInt64(NARFormat.maxNameLength) {
                throw NARError(offset: offset, .stringTooLong(what: "file name", length: length, max: NARFormat.maxNameLength))
            }
        case .target:
            if length > UInt64(NARFormat.maxTargetLength) {
                throw NARError(offset: offset, .stringTooLong(what: "symlink target", length: length, max: NARFormat.maxTargetLength))
            }
        default:
            if length > UInt64(NARFormat.maxTagLength) {
                throw NARError(offset: offset, .stringTooLong(what: "tag (expected \(expectation))", length: length, max: NARFormat.maxTagLength))
            }
        }
    }

    // MARK: Grammar

    private mutating func handleString(_ s: [UInt8], at offset: UInt64, _ handler: (NAREvent) throws -> Void) throws {
        func tag(_ t: StaticString, then next: Expect) throws(NARError) {
            guard s.elementsEqual(UnsafeBufferPointer(start: t.utf8Start, count: t.utf8CodeUnitCount)) else {
                throw NARError(offset: offset, .unexpectedTag(expected: [t.description], got: s))
            }
            expect = next
        }
        switch expect {
        case .magic:
            guard s == Array(NARFormat.magic.utf8) else { throw NARError(offset: offset, .notANAR) }
            expect = .open
        case .open: try tag("(", then: .typeTag)
        case .typeTag: try tag("type", then: .typeValue)
        case .typeValue:
            switch String(decoding: s, as: UTF8.self) {
            case "regular":
                executable = false
                expect = .fileTag
            case "symlink":
                expect = .targetTag
            case "directory":
                try handler(.directory)
                previousNames.append(nil)
                expect = .entryOrClose
            default:
                throw NARError(offset: offset, .unknownType(s))
            }
        case .fileTag:
            if s == Array("executable".utf8) {
                expect = .executableValue
            } else {
                try tag("contents", then: .fileTag)
                startUnit(.contentsSize, need: 8)
            }
        case .executableValue:
            executable = true
            expect = .contentsTag
        case .contentsTag:
            try tag("contents", then: .contentsTag)
            startUnit(.contentsSize, need: 8)
        case .fileClose:
            try tag(")", then: .fileClose)
            try handler(.endFile)
            try nodeDone()
        case .targetTag: try tag("target", then: .target)
        case .target:
            if NARFormat.targetProblem(s) != nil { throw NARError(offset: offset, .invalidSymlinkTarget(s)) }
            try handler(.symlink(target: s))
            expect = .nodeClose
        case .nodeClose:
            try tag(")", then: .nodeClose)
            try nodeDone()
        case .entryOrClose:
            if s == [0x29] {
                try handler(.endDirectory)
                previousNames.removeLast()
                try nodeDone()
            } else if s == Array("entry".utf8) {
                expect = .entryOpen
            } else {
                throw NARError(offset: offset, .unexpectedTag(expected: ["entry", ")"], got: s))
            }
        case .entryOpen: try tag("(", then: .nameTag)
        case .nameTag: try tag("name", then: .name)
        case .name:
            if NARFormat.nameProblem(s) != nil { throw NARError(offset: offset, .invalidName(s)) }
            if let previous = previousNames[previousNames.count - 1], !NARFormat.precedes(previous, s) {
                throw NARError(offset: offset, .notSorted(name: s, previous: previous))
            }
            previousNames[previousNames.count - 1] = s
            pendingName = s
            expect = .nodeTag
        case .nodeTag:
            try tag("node", then: .open)
            if previousNames.count >= NARFormat.maxDepth { throw NARError(offset: offset, .tooDeep(max: NARFormat.maxDepth)) }
            try handler(.entry(name: pendingName))
        case .entryClose: try tag(")", then: .entryOrClose)
        case .done:
            break
        }
    }

    private mutating func nodeDone() throws(NARError) {
        if previousNames.isEmpty {
            expect = .done
            unit = .done
        } else {
            expect = .entryClose
        }
    }

    /// What the parser waits for, for truncation messages.
    private var expectation: String {
        switch unit {
        case .contents(let remaining): return "\(remaining) more bytes of file contents"
        case .contentsPadding: return "file contents padding"
        case .contentsSize: return "file contents size"
        case .string: return "the rest of a string"
        default: break
        }
        switch expect {
        case .magic: return "'\(NARFormat.magic)'"
        case .open, .entryOpen: return "tag '('"
        case .typeTag: return "tag 'type'"
        case .typeValue: return "a file type"
        case .fileTag: return "tag 'executable' or 'contents'"
        case .executableValue: return "an empty string"
        case .contentsTag: return "tag 'contents'"
        case .fileClose, .nodeClose, .entryClose: return "tag ')'"
        case .targetTag: return "tag 'target'"
        case .target: return "a symlink target"
        case .entryOrClose: return "tag 'entry' or ')'"
        case .nameTag: return "tag 'name'"
        case .name: return "an entry name"
        case .nodeTag: return "tag 'node'"
        case .done: return "nothing"
        }
    }
}
