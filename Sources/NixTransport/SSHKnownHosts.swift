import NixCore
#if canImport(Glibc)
import Glibc
#endif

/// known_hosts files read as OpenSSH reads them: every valid line, whatever comes before
/// it; plain and hashed (`|1|`) host names with wildcards and negation; the `@revoked` and
/// `@cert-authority` markers. Lines that cannot be read are kept as problems naming file
/// and line.
struct SSHKnownHosts {
    enum Marker: Equatable { case revoked, certAuthority }

    enum Hosts: Equatable {
        case patterns([String])
        /// HMAC-SHA1 of the name keyed with the salt.
        case hashed(salt: [UInt8], hash: [UInt8])
    }

    struct Entry: Equatable {
        var marker: Marker?
        var hosts: Hosts
        var key: SSHPublicKey
        var file: String
        var line: Int
        var origin: String { "\(file):\(line)" }
    }

    enum Verdict: Equatable {
        case match(Entry)
        /// The key is listed `@revoked`.
        case revoked(Entry)
        /// The host is known with a key of this type, and it is another key.
        case mismatch([Entry])
        /// The host is known only with keys of other types.
        case otherTypes([Entry])
        /// Only `@cert-authority` lines name the host.
        case certAuthorityOnly([Entry])
        case unknown
    }

    var entries: [Entry] = []
    /// "file:line: why" for each line that was skipped.
    var problems: [String] = []

    /// Reads the files that exist (missing ones are normal); at most 16 MiB each.
    static func read(files: [String]) -> SSHKnownHosts {
        var result = SSHKnownHosts()
        for file in files {
            guard let text = readFile(file) else { continue }
            result.parse(text, file: file)
        }
        return result
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        while data.count <= 16 << 20 {
            let n = system_read(fd, &buf, buf.count)
            if n <= 0 { break }
            data += buf[..<n]
        }
        return String(decoding: data.prefix(16 << 20), as: UTF8.self)
    }

    mutating func parse(_ text: String, file: String) {
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty || line.hasPrefix("#") || line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { continue }
            switch Self.parseLine(line) {
            case let .success((marker, hosts, key)):
                entries.append(Entry(marker: marker, hosts: hosts, key: key, file: file, line: i + 1))
            case let .failure(why):
                problems.append("\(file):\(i + 1): \(why.message)")
            }
        }
    }

    struct LineError: Error { var message: String }

    static func parseLine(_ line: Substring) -> Result<(Marker?, Hosts, SSHPublicKey), LineError> {
        var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        var marker: Marker? = nil
        if let m = fields.first, m.hasPrefix("@") {
            switch m {
            case "@revoked": marker = .revoked
            case "@cert-authority": marker = .certAuthority
            default: return .failure(LineError(message: "unknown marker '\(m.prefix(40))'"))
            }
            fields.removeFirst()
        }
        guard fields.count >= 3 else {
            return .failure(LineError(message: fields.count == 2 ? "no key" : "not a known_hosts line"))
        }
        if Int(fields[1]) != nil {
            return .failure(LineError(message: "SSH-1 RSA keys are not supported"))
        }
        let hosts: Hosts
        if fields[0].hasPrefix("|") {
            let parts = fields[0].split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[1] == "1", let salt = try? Base64.decode(parts[2]), let hash = try? Base64.decode(parts[3]),
                  salt.count == 20, hash.count == 20 else {
                return .failure(LineError(message: "bad hashed host name"))
            }
            hosts = .hashed(salt: salt, hash: hash)
        } else {
            hosts = .patterns(fields[0].split(separator: ",").map { $0.lowercased() })
        }
        do {
            return .success((marker, hosts, try SSHPublicKey(openSSHLine: fields[1] + " " + fields[2])))
        } catch {
            return .failure(LineError(message: "\(error)"))
        }
    }

    /// The name OpenSSH looks a host up under: the alias or host, with "[...]:port" for a
    /// port other than 22 (an alias is taken as it is).
    static func lookupName(host: String, port: Int, alias: String?) -> String {
        if let alias { return alias }
        return port == 22 ? host : "[\(host)]:\(port)"
    }

    func entries(for name: String) -> [Entry] {
        let lower = name.lowercased()
        return entries.filter { Self.hostsMatch($0.hosts, lower) }
    }

    static func hostsMatch(_ hosts: Hosts, _ name: String) -> Bool {
        switch hosts {
        case let .patterns(p): SSHConfig.matches(host: name, patterns: p)
        case let .hashed(salt, hash): hmacSHA1(key: salt, message: Array(name.utf8)) == hash
        }
    }

    /// Key types recorded for the host, in file order (to ask the server for one of them).
    func knownTypes(for name: String) -> [String] {
        var types: [String] = []
        for e in entries(for: name) where e.marker == nil && !types.contains(e.key.type) { types.append(e.key.type) }
        return types
    }

    func check(name: String, key: SSHPublicKey) -> Verdict {
        let named = entries(for: name)
        if let revoked = entries.first(where: { $0.marker == .revoked && $0.key.blob == key.blob }) { return .revoked(revoked) }
        let plain = named.filter { $0.marker == nil }
        if let hit = plain.first(where: { $0.key.blob == key.blob }) { return .match(hit) }
        let sameType = plain.filter { $0.key.type == key.type }
        if !sameType.isEmpty { return .mismatch(sameType) }
        if !plain.isEmpty { return .otherTypes(plain) }
        let authorities = named.filter { $0.marker == .certAuthority }
        if !authorities.isEmpty { return .certAuthorityOnly(authorities) }
        return .unknown
    }

    /// A known_hosts line for `name`, hashed as OpenSSH writes it under HashKnownHosts.
    static func line(name: String, key: SSHPublicKey, hashed: Bool) -> String {
        guard hashed else { return "\(name) \(key.openSSHLine)\n" }
        var rng = SystemRandomNumberGenerator()
        let salt = (0..<20).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let hash = hmacSHA1(key: salt, message: Array(name.utf8))
        return "|1|\(Base64.encode(salt))|\(Base64.encode(hash)) \(key.openSSHLine)\n"
    }

    /// Records a host as accept-new does, safe against concurrent first connections: the
    /// line is appended with O_APPEND in one write under an exclusive lock, and not at all
    /// if another connection recorded the host meanwhile. Returns the verdict of the
    /// file as it was under the lock (`.unknown` when the line was written).
    static func record(name: String, key: SSHPublicKey, in file: String, hashed: Bool) -> Result<Verdict, LineError> {
        let dir = file.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !dir.isEmpty { mkdir(dir, 0o700) }
        let fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return .failure(LineError(message: "cannot open \(file): \(Posix.errorText())")) }
        defer { close(fd) }
        guard system_flock(fd, LOCK_EX) == 0 else {
            return .failure(LineError(message: "cannot lock \(file): \(Posix.errorText())"))
        }
        let now = read(files: [file]).check(name: name, key: key)
        guard now == .unknown else { return .success(now) }
        // A file not ending in a newline would glue our line to its last one.
        var prefix = ""
        if let text = readFile(file), !text.isEmpty, !text.hasSuffix("\n") { prefix = "\n" }
        let bytes = Array((prefix + line(name: name, key: key, hashed: hashed)).utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { return .failure(LineError(message: "cannot write \(file): \(Posix.errorText())")) }
        return .success(.unknown)
    }

    static func hmacSHA1(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? HashSink.hash(.sha1, key).bytes : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = HashSink(.sha1)
        inner.update(k.map { $0 ^ 0x36 })
        inner.update(message)
        let outer = HashSink(.sha1)
        outer.update(k.map { $0 ^ 0x5c })
        outer.update(inner.finalize().bytes)
        return outer.finalize().bytes
    }
}
