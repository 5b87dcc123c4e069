import NixCore

/// The fields of a cached answer in a compact binary form, kept in this cache beside
/// the narinfo text so a warm lookup rebuilds its PathInfo without parsing text (parsing was
/// most of a warm lookup's time). It carries exactly what the text does, so decoding gives
/// the same PathInfo as parsing the text: no registration time, not ultimate.
///
/// Layout (little endian): version byte 1; path base name; deriver base name (empty: none);
/// hash algorithm name; hash bytes; NAR size (8 bytes); reference count (4 bytes) and base
/// names; signature count (4 bytes) and signatures; content address (empty: none). Strings
/// are a 2-byte length then UTF-8; hash bytes a 1-byte length. Every length is checked
/// against what is left, and anything malformed decodes to nil (the text is then parsed).
public enum NarInfoRecord {
    public static let version: UInt8 = 1

    public static func encode(_ info: PathInfo) -> [UInt8]? {
        var out: [UInt8] = [version]
        out.reserveCapacity(128 + info.references.count * 60 + info.sigs.count * 110)
        func string(_ s: String) -> Bool {
            guard s.utf8.count <= Int(UInt16.max) else { return false }
            append(UInt64(s.utf8.count), bytes: 2)
            out.append(contentsOf: s.utf8)
            return true
        }
        func append(_ value: UInt64, bytes: Int) {
            for i in 0..<bytes { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
        }
        guard string(info.path.baseName), string(info.deriver?.baseName ?? ""),
              string(info.narHash.algorithm.rawValue), info.narHash.bytes.count <= 255 else { return nil }
        out.append(UInt8(info.narHash.bytes.count))
        out.append(contentsOf: info.narHash.bytes)
        append(info.narSize, bytes: 8)
        append(UInt64(info.references.count), bytes: 4)
        for r in info.references where !string(r.baseName) { return nil }
        append(UInt64(info.sigs.count), bytes: 4)
        for s in info.sigs where !string(s) { return nil }
        guard string(info.ca?.description ?? "") else { return nil }
        return out
    }

    public static func decode(_ bytes: [UInt8]) -> PathInfo? {
        var reader = Reader(bytes: bytes)
        guard reader.integer(1) == UInt64(version),
              let base = reader.string(), let path = try? StorePath(baseName: base),
              let deriverName = reader.string(),
              let algorithmName = reader.string(), let algorithm = HashAlgorithm(rawValue: algorithmName),
              let hashCount = reader.integer(1), let hashBytes = reader.bytes(Int(hashCount)),
              let narHash = try? Hash(algorithm: algorithm, bytes: hashBytes),
              let narSize = reader.integer(8),
              let refCount = reader.count() else { return nil }
        var references = Set<StorePath>(minimumCapacity: refCount)
        for _ in 0..<refCount {
            guard let name = reader.string(), let ref = try? StorePath(baseName: name) else { return nil }
            references.insert(ref)
        }
        guard let sigCount = reader.count() else { return nil }
        var sigs = Set<String>(minimumCapacity: sigCount)
        for _ in 0..<sigCount {
            guard let sig = reader.string() else { return nil }
            sigs.insert(sig)
        }
        guard let caText = reader.string(), reader.atEnd else { return nil }
        var deriver: StorePath?
        if !deriverName.isEmpty {
            guard let d = try? StorePath(baseName: deriverName) else { return nil }
            deriver = d
        }
        var ca: ContentAddress?
        if !caText.isEmpty {
            guard let c = try? ContentAddress(parsing: caText) else { return nil }
            ca = c
        }
        return PathInfo(path: path, deriver: deriver, narHash: narHash, references: references,
                        narSize: narSize, sigs: sigs, ca: ca)
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        var atEnd: Bool { offset == bytes.count }

        mutating func integer(_ size: Int) -> UInt64? {
            guard bytes.count - offset >= size else { return nil }
            var value: UInt64 = 0
            for i in 0..<size { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            offset += size
            return value
        }

        /// A count of strings still to come: each takes at least 2 bytes, which bounds it.
        mutating func count() -> Int? {
            guard let n = integer(4), n <= UInt64(bytes.count - offset) / 2 else { return nil }
            return Int(n)
        }

        mutating func bytes(_ n: Int) -> [UInt8]? {
            guard n >= 0, bytes.count - offset >= n else { return nil }
            defer { offset += n }
            return Array(bytes[offset..<offset + n])
        }

        mutating func string() -> String? {
            guard let n = integer(2), bytes.count - offset >= Int(n) else { return nil }
            defer { offset += Int(n) }
            return String(decoding: bytes[offset..<offset + Int(n)], as: UTF8.self)
        }
    }
}
