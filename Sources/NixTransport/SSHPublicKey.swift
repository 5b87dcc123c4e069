import NixCore

/// An SSH public key: its algorithm name and wire-format blob.
public struct SSHPublicKey: Sendable, Equatable, CustomStringConvertible {
    public var type: String
    public var blob: [UInt8]

    public init(type: String, blob: [UInt8]) {
        self.type = type
        self.blob = blob
    }

    /// A key from its wire blob; the type is the blob's leading SSH string.
    public init(blob: [UInt8]) {
        self.init(type: Self.blobType(blob) ?? "unknown", blob: blob)
    }

    static func blobType(_ blob: [UInt8]) -> String? {
        guard blob.count >= 4 else { return nil }
        let n = Int(blob[0]) << 24 | Int(blob[1]) << 16 | Int(blob[2]) << 8 | Int(blob[3])
        guard n <= blob.count - 4 else { return nil }
        return String(decoding: blob[4..<4 + n], as: UTF8.self)
    }

    /// Parses an OpenSSH public-key line "TYPE BASE64 [comment]" (a known_hosts-style
    /// leading host name is not accepted).
    public init(openSSHLine line: some StringProtocol) throws(SSHKeyParseError) {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        guard fields.count >= 2 else { throw .notAKeyLine(String(line.prefix(80))) }
        guard let blob = try? Base64.decode(fields[1]), blob.count >= 4, blob.count <= 16 * 1024 else {
            throw .badBase64(String(fields[1].prefix(80)))
        }
        // The blob starts with the algorithm name as an SSH string: it must match the text.
        guard Self.blobType(blob) == String(fields[0]) else {
            throw .typeMismatch(String(fields[0]))
        }
        self.init(type: String(fields[0]), blob: blob)
    }

    /// Parses the machines file's host key field: base64 of a whole OpenSSH public-key line.
    public init(machinesFileField field: some StringProtocol) throws(SSHKeyParseError) {
        guard let decoded = try? Base64.decode(field), decoded.count <= 32 * 1024 else {
            throw .badBase64(String(field.prefix(80)))
        }
        try self.init(openSSHLine: String(decoding: decoded, as: UTF8.self))
    }

    /// OpenSSH's fingerprint: "SHA256:" + unpadded base64 of the blob's SHA-256.
    public var fingerprint: String { Self.fingerprint(blob) }

    public static func fingerprint(_ blob: [UInt8]) -> String {
        let b64 = Base64.encode(HashSink.hash(.sha256, blob).bytes)
        return "SHA256:" + b64.prefix { $0 != "=" }
    }

    /// "TYPE BASE64".
    public var openSSHLine: String { "\(type) \(Base64.encode(blob))" }
    public var description: String { "\(type) \(fingerprint)" }
}

public enum SSHKeyParseError: Error, Sendable, Equatable, CustomStringConvertible {
    case notAKeyLine(String)
    case badBase64(String)
    case typeMismatch(String)

    public var description: String {
        switch self {
        case let .notAKeyLine(s): "not an OpenSSH public key line: '\(s)'"
        case let .badBase64(s): "invalid base64 in SSH public key: '\(s)'"
        case let .typeMismatch(t): "SSH public key blob does not match its type '\(t)'"
        }
    }
}
