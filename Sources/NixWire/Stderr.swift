/// Tags of the messages a daemon sends while it works on a request (the "stderr" channel).
public enum StderrTag {
    public static let next: UInt64 = 0x6f6c_6d67
    public static let read: UInt64 = 0x6461_7461
    public static let write: UInt64 = 0x6461_7416
    public static let last: UInt64 = 0x616c_7473
    public static let error: UInt64 = 0x6378_7470
    public static let startActivity: UInt64 = 0x5354_5254
    public static let stopActivity: UInt64 = 0x5354_4f50
    public static let result: UInt64 = 0x5253_4c54
}

/// A field of an activity or result: numbers and strings.
public enum LogField: Sendable, Hashable {
    case int(UInt64)
    case string(String)
}

/// A log message from the daemon.
public enum LogEvent: Sendable, Hashable {
    /// A log line (STDERR_NEXT), as sent (usually with its trailing newline).
    case next(String)
    case startActivity(id: UInt64, level: UInt64, type: UInt64, text: String, fields: [LogField], parent: UInt64)
    case stopActivity(id: UInt64)
    case result(id: UInt64, type: UInt64, fields: [LogField])
    /// Data for the client's sink (STDERR_WRITE).
    case write([UInt8])
}

/// An error the daemon reported (STDERR_ERROR). `message` is exactly what was sent, ANSI
/// colours included; `displayMessage` strips them for printing.
public struct DaemonError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// Nix's verbosity level (0 = error). 1.26+.
    public var level: UInt64
    /// Exit status (before 1.26 only).
    public var status: UInt64?
    /// Error trace lines, outermost first. 1.26+.
    public var traces: [String]

    public init(message: String, level: UInt64 = 0, status: UInt64? = nil, traces: [String] = []) {
        self.message = message
        self.level = level
        self.status = status
        self.traces = traces
    }

    public var displayMessage: String { DaemonError.stripANSI(message) }

    public var description: String {
        var s = "Nix daemon error: " + displayMessage
        for t in traces { s += "\n  … " + DaemonError.stripANSI(t) }
        return s
    }

    /// Removes ANSI escape sequences (CSI `ESC [ ... letter` and OSC `ESC ] ... BEL/ST`).
    public static func stripANSI(_ s: String) -> String {
        var out = [UInt8]()
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == 0x1b, i + 1 < u.count {
                if u[i + 1] == UInt8(ascii: "[") {
                    i += 2
                    while i < u.count && !(0x40...0x7e).contains(u[i]) { i += 1 }
                    i += 1
                    continue
                }
                if u[i + 1] == UInt8(ascii: "]") {
                    i += 2
                    while i < u.count && u[i] != 0x07 && !(u[i] == 0x1b && i + 1 < u.count && u[i + 1] == UInt8(ascii: "\\")) { i += 1 }
                    i += (i < u.count && u[i] == 0x07) ? 1 : 2
                    continue
                }
            }
            out.append(u[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// One message of the stderr channel.
public enum StderrMessage: Sendable, Hashable {
    case log(LogEvent)
    /// The daemon asks for up to this many bytes of the request's data (STDERR_READ).
    case read(Int)
    case error(DaemonError)
    /// The daemon is done; the reply follows.
    case last

    public func write(to w: inout WireWriter, _ ctx: WireContext) {
        switch self {
        case let .log(.next(s)):
            w.writeU64(StderrTag.next)
            w.writeString(s)
        case let .log(.write(data)):
            w.writeU64(StderrTag.write)
            w.writeBytes(data)
        case let .log(.startActivity(id, level, type, text, fields, parent)):
            w.writeU64(StderrTag.startActivity)
            w.writeU64(id)
            w.writeU64(level)
            w.writeU64(type)
            w.writeString(text)
            StderrMessage.writeFields(fields, to: &w)
            w.writeU64(parent)
        case let .log(.stopActivity(id)):
            w.writeU64(StderrTag.stopActivity)
            w.writeU64(id)
        case let .log(.result(id, type, fields)):
            w.writeU64(StderrTag.result)
            w.writeU64(id)
            w.writeU64(type)
            StderrMessage.writeFields(fields, to: &w)
        case let .read(n):
            w.writeU64(StderrTag.read)
            w.writeInt(n)
        case let .error(e):
            w.writeU64(StderrTag.error)
            if ctx.version.atLeast(26) {
                w.writeString("Error")
                w.writeU64(e.level)
                w.writeString("Error")
                w.writeString(e.message)
                // No positions: Nix 2.8 asserts havePos == 0 when reading.
                w.writeU64(0)
                w.writeU64(UInt64(e.traces.count))
                for t in e.traces {
                    w.writeU64(0)
                    w.writeString(t)
                }
            } else {
                w.writeString(e.message)
                w.writeU64(e.status ?? 1)
            }
        case .last:
            w.writeU64(StderrTag.last)
        }
    }

    public static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> StderrMessage {
        let tag = try r.readU64("stderr message type")
        switch tag {
        case StderrTag.next: return .log(.next(try r.readString("log line")))
        case StderrTag.write: return .log(.write(try r.readBytes("STDERR_WRITE data")))
        case StderrTag.read: return .read(try r.readInt("STDERR_READ length"))
        case StderrTag.last: return .last
        case StderrTag.startActivity:
            let id = try r.readU64("activity id")
            let level = try r.readU64("activity level")
            let type = try r.readU64("activity type")
            let text = try r.readString("activity text")
            let fields = try readFields(&r)
            return .log(.startActivity(id: id, level: level, type: type, text: text, fields: fields,
                                       parent: try r.readU64("parent activity id")))
        case StderrTag.stopActivity: return .log(.stopActivity(id: try r.readU64("activity id")))
        case StderrTag.result:
            let id = try r.readU64("activity id")
            let type = try r.readU64("result type")
            return .log(.result(id: id, type: type, fields: try readFields(&r)))
        case StderrTag.error:
            if ctx.version.atLeast(26) {
                let type = try r.readString("error type")
                guard type == "Error" else { throw .badValue(reading: "error type", detail: "unexpected error type '\(type)'") }
                let level = try r.readU64("error level")
                _ = try r.readString("error name")
                let msg = try r.readString("error message")
                guard try r.readU64("error position flag") == 0 else {
                    throw .notRepresentable("deserializing error positions is not supported")
                }
                let n = try r.readCount("error traces")
                var traces: [String] = []
                for _ in 0..<n {
                    guard try r.readU64("trace position flag") == 0 else {
                        throw .notRepresentable("deserializing error positions is not supported")
                    }
                    traces.append(try r.readString("trace"))
                }
                return .error(DaemonError(message: msg, level: level, traces: traces))
            } else {
                let msg = try r.readString("error message")
                return .error(DaemonError(message: msg, status: try r.readU64("error status")))
            }
        default:
            throw .unknownStderrMessage(tag)
        }
    }

    static func writeFields(_ fields: [LogField], to w: inout WireWriter) {
        w.writeU64(UInt64(fields.count))
        for f in fields {
            switch f {
            case let .int(v):
                w.writeU64(0)
                w.writeU64(v)
            case let .string(s):
                w.writeU64(1)
                w.writeString(s)
            }
        }
    }

    static func readFields(_ r: inout WireReader) throws(WireError) -> [LogField] {
        let n = try r.readCount("activity fields")
        var out: [LogField] = []
        for _ in 0..<n {
            switch try r.readU64("field type") {
            case 0: out.append(.int(try r.readU64("int field")))
            case 1: out.append(.string(try r.readString("string field")))
            case let t: throw .badNumber(reading: "field type", value: t)
            }
        }
        return out
    }
}
