/// Checks a content-addressed path's NAR against its `CA` as it streams past, as Nix's
/// `LocalStore::addToStore` does on import (`hashCAPath`): for `fixed:r:<algo>` the NAR,
/// for `fixed:<algo>` and `text:sha256` the contents of the one regular file it must hold,
/// each hashed modulo the path's own hash part.
public final class ContentAddressVerifier {
    public let path: StorePath
    public let contentAddress: ContentAddress
    /// Where the path lives, for the error texts.
    public let storeDir: StoreDirectory
    private let sink: HashModuloSink
    private var reader: NARReader?
    private var shape = Shape.start
    private var failure: ContentAddressMismatch?

    /// What the root node of a flat or text path's NAR was.
    private enum Shape { case start, file, other(String) }

    public init(path: StorePath, contentAddress: ContentAddress, storeDir: StoreDirectory) {
        self.path = path
        self.contentAddress = contentAddress
        self.storeDir = storeDir
        switch contentAddress {
        case let .text(hash):
            sink = HashModuloSink(hash.algorithm, modulus: path.hashPart)
            reader = NARReader()
        case let .fixed(method, hash):
            sink = HashModuloSink(hash.algorithm, modulus: path.hashPart)
            reader = method == .recursive ? nil : NARReader()
        }
    }

    /// A verifier for `info`'s claim, or nil when it makes none.
    public convenience init?(_ info: PathInfo, storeDir: StoreDirectory) {
        guard let ca = info.ca else { return nil }
        self.init(path: info.path, contentAddress: ca, storeDir: storeDir)
    }

    /// The next bytes of the NAR.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        guard reader != nil else { return sink.update(bytes) }
        do {
            try reader!.feed(bytes) { event in
                switch (event, shape) {
                case (.regularFile, .start): shape = .file
                case let (.contents(chunk), .file): sink.update(chunk)
                case (.endFile, _), (.contents, _), (.regularFile, _), (.entry, _), (.endDirectory, _): break
                case (.directory, .start): shape = .other("a directory")
                case (.symlink, .start): shape = .other("a symlink")
                case (.directory, _), (.symlink, _): break
                }
            }
        } catch {
            failure = .notANAR("\(error)")
        }
    }

    public func update<C: ContiguousBytes>(_ bytes: C) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Throws unless the NAR seen matches the address (call once, after the last byte).
    public func finish() throws(ContentAddressMismatch) {
        if let failure { throw failure }
        if let reader {
            do { try reader.finish() } catch { throw .notANAR("\(error)") }
            if case let .other(what) = shape { throw .notRegularFile(path: storeDir.print(path), what: what) }
        }
        let got = sink.finalize()
        guard got == contentAddress.hash else {
            throw .hashMismatch(path: storeDir.print(path), specified: contentAddress.hash, got: got)
        }
    }

    /// Checks a whole NAR held in memory.
    public static func check<C: ContiguousBytes>(_ nar: C, of path: StorePath, against ca: ContentAddress,
                                                 storeDir: StoreDirectory) throws(ContentAddressMismatch) {
        let v = ContentAddressVerifier(path: path, contentAddress: ca, storeDir: storeDir)
        v.update(nar)
        try v.finish()
    }
}

/// A NAR that does not match its path's content address (texts after Nix's; paths printed
/// in their store directory).
public enum ContentAddressMismatch: Error, Equatable, Sendable, CustomStringConvertible {
    case hashMismatch(path: String, specified: Hash, got: Hash)
    case notRegularFile(path: String, what: String)
    case notANAR(String)

    public var description: String {
        switch self {
        case let .hashMismatch(p, specified, got):
            return "ca hash mismatch importing path '\(p)';\n  specified: \(specified.string(.nix32))\n  got:       \(got.string(.nix32))"
        case let .notRegularFile(p, what):
            return "path '\(p)' has a flat content address but is \(what), not a regular file"
        case let .notANAR(e):
            return "cannot check the content address: \(e)"
        }
    }
}
