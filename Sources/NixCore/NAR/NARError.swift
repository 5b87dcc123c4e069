/// A NAR that breaks the format, with the byte offset (from the start of the NAR) of the
/// string or padding at fault. Messages carry Nix's own wording after the offset.
public struct NARError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The first string is not `nix-archive-1`.
        case notANAR
        /// A tag other than the one(s) the grammar allows here.
        case unexpectedTag(expected: [String], got: [UInt8])
        /// A length prefix above the bound for what is being read.
        case stringTooLong(what: String, length: UInt64, max: Int)
        case invalidName([UInt8])
        /// Entries must be strictly increasing byte-wise.
        case notSorted(name: [UInt8], previous: [UInt8])
        case invalidSymlinkTarget([UInt8])
        case unknownType([UInt8])
        case executableMarkerNotEmpty
        case nonZeroPadding
        case tooDeep(max: Int)
        /// The input ended inside the NAR.
        case truncated(expected: String)
        /// Bytes after the end of the NAR where none were allowed.
        case trailingBytes(count: Int)
        /// A writer was driven out of order (e.g. contents without a file).
        case misuse(String)
        /// A writer was given more or fewer content bytes than the declared size.
        case sizeMismatch(declared: UInt64, written: UInt64)
    }

    public var offset: UInt64
    public var kind: Kind

    public init(offset: UInt64, _ kind: Kind) {
        self.offset = offset
        self.kind = kind
    }

    public var description: String { "NAR: at offset \(offset): \(message)" }

    /// The message without the offset (upstream Nix's text where it has one).
    public var message: String {
        switch kind {
        case .notANAR:
            return "input doesn't look like a Nix archive"
        case let .unexpectedTag(expected, got):
            let e = expected.map { "'\($0)'" }.joined(separator: " or ")
            return "expected tag \(e), got '\(NARFormat.printable(got))'"
        case let .stringTooLong(what, length, max):
            return "\(what) of \(length) bytes is too long (at most \(max))"
        case let .invalidName(name):
            return NARFormat.nameProblem(name) ?? "NAR contains invalid file name '\(NARFormat.printable(name))'"
        case let .notSorted(name, previous):
            return "NAR directory is not sorted: entry '\(NARFormat.printable(name))' is not sorted after '\(NARFormat.printable(previous))'"
        case let .invalidSymlinkTarget(target):
            return NARFormat.targetProblem(target) ?? "NAR contains invalid symlink target"
        case let .unknownType(type):
            return "unknown file type '\(NARFormat.printable(type))'"
        case .executableMarkerNotEmpty:
            return "executable marker has non-empty value"
        case .nonZeroPadding:
            return "non-zero padding"
        case let .tooDeep(max):
            return "NAR directory nesting exceeds maximum depth of \(max)"
        case let .truncated(expected):
            return "unexpected end of NAR, expected \(expected)"
        case let .trailingBytes(count):
            return "\(count) bytes follow the end of the NAR"
        case let .misuse(what):
            return what
        case let .sizeMismatch(declared, written):
            return "file declared \(declared) bytes of contents but \(written) were written"
        }
    }
}
