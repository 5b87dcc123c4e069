/// Why bytes from a worker-protocol peer were refused. Each case names what was being read,
/// so a printed error says where in the conversation it went wrong.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended in the middle of `reading` (a caller feeding chunks just waits for more).
    case truncated(reading: String)
    /// A string or byte field longer than the configured limit.
    case stringTooLong(reading: String, length: UInt64, limit: Int)
    /// A list, set or map with more items than the configured limit.
    case tooManyItems(reading: String, count: UInt64, limit: Int)
    /// One message (a request, a reply, a log message) grew beyond the configured limit
    /// before it was complete.
    case messageTooLong(reading: String, length: Int, limit: Int)
    /// Padding after a string was not all zeros.
    case nonZeroPadding(reading: String)
    /// A number that does not fit what it stands for (a bool that is 7, a tag that is 9).
    case badNumber(reading: String, value: UInt64)
    /// A field whose text does not parse (a store path, hash, content address...).
    case badValue(reading: String, detail: String)
    /// The peer did not start with the expected magic number.
    case badMagic(expected: UInt64, got: UInt64)
    /// The negotiated version (the lower of ours and the peer's) is below what we speak.
    case unsupportedVersion(peer: String, negotiated: String, minimum: String)
    /// A stderr message tag we do not know.
    case unknownStderrMessage(UInt64)
    /// A value that this protocol version cannot carry.
    case notRepresentable(String)
    /// The peer sent something the state machine did not expect now.
    case unexpected(String)
    /// The daemon reported an error where the protocol has no request to attach it to.
    case daemon(DaemonError)

    public var description: String {
        switch self {
        case let .truncated(what): return "unexpected end of input while reading \(what)"
        case let .stringTooLong(what, n, limit): return "\(what) is \(n) bytes long, more than the limit of \(limit)"
        case let .tooManyItems(what, n, limit): return "\(what) has \(n) items, more than the limit of \(limit)"
        case let .messageTooLong(what, n, limit):
            return "\(what) is more than \(limit) bytes long (\(n) bytes so far, still incomplete)"
        case let .nonZeroPadding(what): return "non-zero padding after \(what)"
        case let .badNumber(what, v): return "invalid number \(v) for \(what)"
        case let .badValue(what, detail): return "invalid \(what): \(detail)"
        case let .badMagic(e, g): return "protocol mismatch: expected magic 0x\(String(e, radix: 16)), got 0x\(String(g, radix: 16))"
        case let .unsupportedVersion(peer, negotiated, minimum):
            if peer == negotiated { return "the peer's worker protocol \(peer) is too old (need at least \(minimum))" }
            return "worker protocol \(negotiated) is below the minimum \(minimum) (the peer offered \(peer))"
        case let .unknownStderrMessage(tag): return "got unknown message type 0x\(String(tag, radix: 16)) from Nix daemon"
        case let .notRepresentable(detail): return detail
        case let .unexpected(detail): return detail
        case let .daemon(e): return e.description
        }
    }
}

/// Bounds on what a reader accepts, so a hostile or broken peer cannot make us allocate
/// without limit.
public struct WireLimits: Sendable, Hashable {
    /// Longest string or byte field (and longest frame of a framed stream).
    public var maxStringLength: Int
    /// Most items in a list, set or map.
    public var maxListCount: Int
    /// Most bytes of one message (a request's arguments, a reply, a log message); NARs and
    /// framed data stream and are not counted. Room for a million store paths.
    public var maxMessageLength: Int

    public init(maxStringLength: Int = 64 << 20, maxListCount: Int = 1 << 20, maxMessageLength: Int = 128 << 20) {
        self.maxStringLength = maxStringLength
        self.maxListCount = maxListCount
        self.maxMessageLength = maxMessageLength
    }

    public static let `default` = WireLimits()
}
