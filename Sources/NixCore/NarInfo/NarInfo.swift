/// A binary cache's `<hashpart>.narinfo` file: a `PathInfo` plus where its NAR lives.
/// Parsed and printed as Nix's `NarInfo` (src/libstore/nar-info.cc) does.
public struct NarInfo: Sendable, Hashable {
    /// Path, deriver, NAR hash and size, references, signatures, content address.
    public var pathInfo: PathInfo
    /// Where the (compressed) NAR is, relative to the cache (`nar/<filehash>.nar.xz`).
    public var url: String
    /// `none`, `xz`, `bzip2` (the default when the field is missing), `zstd`...
    public var compression: String
    /// Hash and size of the file at `url`.
    public var fileHash: Hash?
    public var fileSize: UInt64
    /// The system the path was built for, when the cache says.
    public var system: String?

    /// Longest narinfo text accepted (a path with ~100,000 references fits).
    public static let maxSize = 8 << 20

    public init(pathInfo: PathInfo, url: String, compression: String = "bzip2",
                fileHash: Hash? = nil, fileSize: UInt64 = 0, system: String? = nil) {
        self.pathInfo = pathInfo
        self.url = url
        self.compression = compression
        self.fileHash = fileHash
        self.fileSize = fileSize
        self.system = system
    }

    /// Prints the file exactly as Nix's `NarInfo::to_string` does (signatures sorted,
    /// `References: ` even when empty). `FileHash` is left out when unknown. Parsing the text
    /// gives this narinfo back when `renderProblem` is nil; a signature that is not
    /// `keyname:base64` is never printed (it could carry lines of its own).
    public func render(in storeDir: StoreDirectory = .default) -> String {
        var s = "StorePath: " + storeDir.print(pathInfo.path) + "\n"
        s += "URL: " + url + "\n"
        s += "Compression: " + compression + "\n"
        if let fileHash { s += "FileHash: " + fileHash.string(.nix32) + "\n" }
        s += "FileSize: " + String(fileSize) + "\n"
        s += "NarHash: " + pathInfo.narHash.string(.nix32) + "\n"
        s += "NarSize: " + String(pathInfo.narSize) + "\n"
        s += "References: " + pathInfo.sortedReferences.map(\.baseName).joined(separator: " ") + "\n"
        if let d = pathInfo.deriver { s += "Deriver: " + d.baseName + "\n" }
        if let system, !system.isEmpty { s += "System: " + system + "\n" }
        for sig in pathInfo.sigs.sorted() where NarInfoText.signatureProblem(sig) == nil { s += "Sig: " + sig + "\n" }
        if let ca = pathInfo.ca { s += "CA: " + ca.description + "\n" }
        return s
    }

    /// Parses narinfo text. `whence` names the file in errors. Unknown keys are ignored and
    /// a later duplicate key wins, as in Nix; `References` and `CA` may appear only once.
    public init(parsing text: String, whence: String, storeDir: StoreDirectory = .default) throws(NarInfoParseError) {
        func fail(_ line: Int, _ reason: NarInfoParseError.Reason) -> NarInfoParseError {
            NarInfoParseError(file: whence, line: line, reason: reason)
        }
        guard text.utf8.count <= NarInfo.maxSize else { throw fail(0, .tooLarge(text.utf8.count)) }
        guard text.isEmpty || text.utf8.last == UInt8(ascii: "\n") else {
            throw fail(text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count,
                       .missingNewline)
        }
        var path: StorePath?, narHash: Hash?, url = "", compression = "", fileHash: Hash?
        var fileSize: UInt64 = 0, narSize: UInt64 = 0, references = Set<StorePath>(), haveReferences = false
        var deriver: StorePath?, system: String?, sigs = Set<String>(), ca: ContentAddress?

        var lineNumber = 0
        for rawLine in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
            lineNumber += 1
            let n = lineNumber
            if rawLine.isEmpty { continue }
            guard let colon = rawLine.firstIndex(of: UInt8(ascii: ":")) else { throw fail(n, .expectedField) }
            let name = String(decoding: rawLine[..<colon], as: UTF8.self)
            var valueStart = rawLine.index(after: colon)
            if valueStart != rawLine.endIndex {
                guard rawLine[valueStart] == UInt8(ascii: " ") else { throw fail(n, .expectedSpace(key: name)) }
                valueStart = rawLine.index(after: valueStart)
            }
            let value = String(decoding: rawLine[valueStart...], as: UTF8.self)
            // A line break inside a value is impossible here; any other control character
            // is refused too, so every value parsed can be printed back as one line.
            guard NarInfoText.isText(value) else { throw fail(n, .controlCharacter(key: name)) }

            func hashField() throws(NarInfoParseError) -> Hash {
                // Nix's parseAnyPrefixed: `algo:` or SRI is required.
                guard value.contains(":") || value.contains("-") else {
                    throw fail(n, .badHash(key: name, .missingAlgorithm(input: value)))
                }
                do { return try Hash(parsing: value) } catch { throw fail(n, .badHash(key: name, error)) }
            }
            func sizeField() throws(NarInfoParseError) -> UInt64 {
                guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let v = UInt64(value) else {
                    throw fail(n, .badNumber(key: name, value))
                }
                return v
            }
            func storePath(_ s: Substring, full: Bool) throws(NarInfoParseError) -> StorePath {
                do {
                    return full ? try storeDir.parse(s) : try StorePath(baseName: s)
                } catch {
                    throw fail(n, .badStorePath(key: name, error))
                }
            }

            switch name {
            case "StorePath": path = try storePath(Substring(value), full: true)
            case "URL": url = value
            case "Compression": compression = value
            case "FileHash": fileHash = try hashField()
            case "FileSize": fileSize = try sizeField()
            case "NarHash": narHash = try hashField()
            case "NarSize": narSize = try sizeField()
            case "References":
                guard !haveReferences || references.isEmpty else { throw fail(n, .duplicate(key: name)) }
                haveReferences = true
                for r in value.split(separator: " ") { references.insert(try storePath(r, full: false)) }
            case "Deriver":
                deriver = value == "unknown-deriver" ? nil : try storePath(Substring(value), full: false)
            case "System": system = value
            case "Sig":
                if let problem = NarInfoText.signatureProblem(value) { throw fail(n, .badSignature(problem)) }
                sigs.insert(value)
            case "CA":
                guard ca == nil else { throw fail(n, .duplicate(key: name)) }
                if !value.isEmpty {
                    do { ca = try ContentAddress(parsing: value) } catch { throw fail(n, .badContentAddress(error)) }
                }
            default:
                break // Nix ignores keys it does not know.
            }
        }
        guard let path else { throw fail(0, .missing(key: "StorePath")) }
        guard let narHash else { throw fail(0, .missing(key: "NarHash")) }
        guard !url.isEmpty else { throw fail(0, .missing(key: "URL")) }
        guard narSize != 0 else { throw fail(0, .missing(key: "NarSize")) }
        self.pathInfo = PathInfo(path: path, deriver: deriver, narHash: narHash, references: references,
                                 narSize: narSize, sigs: sigs, ca: ca)
        self.url = url
        self.compression = compression.isEmpty ? "bzip2" : compression
        self.fileHash = fileHash
        self.fileSize = fileSize
        self.system = system
    }

    /// Adds a `Sig:` line to narinfo text without touching any other byte: after the last
    /// `Sig:` line, else before `CA:`, else at the end (where Nix would print it). Returns
    /// nil when the text already carries exactly this signature.
    public static func addingSignature(_ sig: String, to text: String) -> String? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let newLine = "Sig: " + sig
        if lines.contains(newLine) { return nil }
        if let last = lines.lastIndex(where: { $0.hasPrefix("Sig:") }) {
            lines.insert(newLine, at: last + 1)
        } else if let ca = lines.firstIndex(where: { $0.hasPrefix("CA:") }) {
            lines.insert(newLine, at: ca)
        } else {
            lines.append(newLine)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A narinfo file Nix would call corrupt, with the place and what was expected.
public struct NarInfoParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        case tooLarge(Int)
        case missingNewline
        case expectedField
        case expectedSpace(key: String)
        case badHash(key: String, HashParseError)
        case badNumber(key: String, String)
        case badStorePath(key: String, StorePathError)
        case badContentAddress(ContentAddressError)
        case duplicate(key: String)
        case missing(key: String)
        case controlCharacter(key: String)
        case badSignature(String)
    }

    /// The file (or URL) the text came from.
    public var file: String
    /// 1-based line; 0 when the problem is the file as a whole.
    public var line: Int
    public var reason: Reason

    public var description: String {
        let place = line > 0 ? "NAR info file '\(file)' is corrupt: line \(line): " : "NAR info file '\(file)' is corrupt: "
        switch reason {
        case let .tooLarge(n): return place + "it is \(n) bytes long, more than \(NarInfo.maxSize)"
        case .missingNewline: return place + "expected a newline at the end of the line"
        case .expectedField: return place + "expected 'Key: value'"
        case let .expectedSpace(k): return place + "expected ': ' after '\(k)'"
        case let .badHash(k, e): return place + "expected a hash with its type in '\(k)': \(e)"
        case let .badNumber(k, v): return place + "expected a non-negative integer in '\(k)', got '\(v)'"
        case let .badStorePath(k, e): return place + "expected a store path in '\(k)': \(e)"
        case let .badContentAddress(e): return place + "expected a content address in 'CA': \(e)"
        case let .duplicate(k): return place + "'\(k)' appears more than once"
        case let .missing(k): return place + "expected a non-empty '\(k)' field"
        case let .controlCharacter(k): return place + "'\(k)' contains a control character"
        case let .badSignature(problem): return place + problem
        }
    }
}
