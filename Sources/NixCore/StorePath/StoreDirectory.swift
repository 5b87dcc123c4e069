/// A store directory (`/nix/store` unless a store says otherwise): prints and parses full
/// store paths and computes new ones with Nix's `makeStorePath` rules.
public struct StoreDirectory: Sendable, Hashable {
    public let path: String

    public static let `default` = StoreDirectory("/nix/store")

    public init(_ path: String) {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        self.path = p
    }

    /// `/nix/store/<hash>-<name>`.
    public func print(_ storePath: StorePath) -> String { path + "/" + storePath.baseName }

    /// Parses a full store path; a path below one (`/nix/store/x-foo/bin`) is refused.
    public func parse(_ full: some StringProtocol) throws(StorePathError) -> StorePath {
        let s = String(full)
        let prefix = path + "/"
        guard s.hasPrefix(prefix) else { throw .notInStore(s, storeDir: path) }
        let base = s.dropFirst(prefix.count)
        if base.contains("/") { throw .notInStore(s, storeDir: path) }
        return try StorePath(baseName: base)
    }

    /// Parses a path that is a store path or lies below one, returning the store path.
    public func storePath(containing full: some StringProtocol) throws(StorePathError) -> StorePath {
        let s = String(full)
        let prefix = path + "/"
        guard s.hasPrefix(prefix) else { throw .notInStore(s, storeDir: path) }
        let base = s.dropFirst(prefix.count).prefix { $0 != "/" }
        return try StorePath(baseName: base)
    }

    // MARK: Computing paths (Nix's store-api.cc rules)

    /// `makeStorePath`: `type:algo:base16:storeDir:name`, SHA-256'd, folded to 20 bytes.
    public func makeStorePath(type: String, hash: Hash, name: String) throws(StorePathError) -> StorePath {
        let s = type + ":" + hash.algorithm.rawValue + ":" + Base16.encode(hash.bytes) + ":" + path + ":" + name
        let digest = HashSink.hash(.sha256, string: s).compressed(to: 20)
        return try StorePath(digest: digest, name: name)
    }

    /// `type:ref1:ref2...[:self]` with references as full paths, sorted.
    func makeType(_ type: String, references: [StorePath], selfReference: Bool) -> String {
        var s = type
        for r in references.map(print).sorted() { s += ":" + r }
        if selfReference { s += ":self" }
        return s
    }

    /// Path of a text file added with `builtins.toFile` / `addTextToStore` (`text:` type).
    public func makeTextPath(name: String, contentHash: Hash, references: [StorePath]) throws(StorePathError) -> StorePath {
        try makeStorePath(type: makeType("text", references: references, selfReference: false),
                          hash: contentHash, name: name)
    }

    /// Path of a fixed-output / content-addressed path: `source:` for recursive SHA-256,
    /// else `output:out` over `fixed:out:[r:]algo:base16:`.
    public func makeFixedOutputPath(name: String, recursive: Bool, hash: Hash,
                                    references: [StorePath] = [], selfReference: Bool = false) throws(StorePathError) -> StorePath {
        if recursive && hash.algorithm == .sha256 {
            return try makeStorePath(type: makeType("source", references: references, selfReference: selfReference),
                                     hash: hash, name: name)
        }
        let inner = "fixed:out:" + (recursive ? "r:" : "") + hash.string(.base16) + ":"
        return try makeStorePath(type: "output:out", hash: HashSink.hash(.sha256, string: inner), name: name)
    }

    /// Path of output `output` of a derivation whose hash modulo is `drvHash`.
    public func makeOutputPath(output: String, drvHash: Hash, name: String) throws(StorePathError) -> StorePath {
        let outName = output == "out" ? name : name + "-" + output
        return try makeStorePath(type: "output:" + output, hash: drvHash, name: outName)
    }
}
