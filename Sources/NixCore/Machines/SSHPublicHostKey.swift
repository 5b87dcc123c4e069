/// A machine's pinned SSH host key: the machines file's 8th column, which is the base64 of a
/// whole OpenSSH public-key line (`ssh-ed25519 AAAA... comment`, as in `ssh_host_*_key.pub`).
/// Both forms are kept: Nix passes the base64 on (`base64-ssh-public-host-key`), SSH clients
/// compare the key blob.
public struct SSHPublicHostKey: Hashable, Sendable, CustomStringConvertible {
    /// The column exactly as written.
    public let base64: String
    /// Its decoded bytes (normally the text of an OpenSSH public-key line).
    public let decoded: [UInt8]

    /// Checks that `base64` decodes the way Nix's `base64Decode` accepts it.
    public init(base64: String) throws(EncodingError) {
        self.decoded = try Base64.decode(base64)
        self.base64 = base64
    }

    /// Encodes an OpenSSH public-key line (what `ssh-keygen` writes to `*.pub`).
    public init(openSSHLine: String) {
        self.base64 = Base64.encode(Array(openSSHLine.utf8))
        self.decoded = Array(openSSHLine.utf8)
    }

    /// The decoded OpenSSH line, when it is text (trailing newline removed).
    public var openSSHLine: String? {
        guard let s = String(validating: decoded, as: UTF8.self) else { return nil }
        return s.trimmingTrailingNewlines
    }

    /// The key type, e.g. `ssh-ed25519`, when the decoded text is an OpenSSH key line.
    public var keyType: String? { fields?.type }

    /// The raw key blob (the line's second field, base64-decoded) — what an SSH library
    /// reports as the server's host key. Nil when the text is not an OpenSSH key line.
    public var keyBlob: [UInt8]? { fields?.blob }

    /// The comment after the key, if any.
    public var comment: String? { fields?.comment }

    private var fields: (type: String, blob: [UInt8], comment: String?)? {
        guard let line = openSSHLine else { return nil }
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count >= 2, let blob = try? Base64.decode(parts[1]), !blob.isEmpty else { return nil }
        // The blob starts with the key type as an SSH string (4-byte length, then the name).
        let type = String(parts[0])
        let prefix = Array(type.utf8)
        let length = UInt32(prefix.count)
        let header: [UInt8] = [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
        guard blob.starts(with: header + prefix) else { return nil }
        let comment = parts.count > 2 ? parts[2...].joined(separator: " ") : nil
        return (type, blob, comment)
    }

    public var description: String { base64 }
}

extension String {
    fileprivate var trimmingTrailingNewlines: String {
        var s = Substring(self)
        while let last = s.last, last.isNewline { s = s.dropLast() }
        return String(s)
    }
}
