import NixCore

/// Honest store content for tests and benchmarks: input-addressed store paths (as a build's
/// outputs would be: `makeStorePath("output:out", <random sha256>, name)`) with references
/// forming a DAG, each path a small file, a small directory or one large file. Everything is
/// deterministic from the seed; contents are written on demand, so nothing large is ever held
/// in memory. Import it with `FixtureStore`, or write the export stream yourself.
///
/// ```swift
/// let fixture = try StoreFixture.make(count: 10_000, seed: 7)
/// let store = try FixtureStore.create(at: dir, fixture: fixture, signWith: key)
/// ```
public struct StoreFixture: Sendable {
    /// What a path holds.
    public enum Content: Sendable, Hashable {
        /// A regular file of `size` bytes naming every reference.
        case file(size: Int)
        /// A directory of `files` small files (1...9), a `refs` file naming every reference
        /// and, when there is one, a `link` symlink to the first reference.
        case directory(files: Int)
        /// One regular file of `bytes` pseudo-random bytes, produced in 1 MiB chunks.
        case large(bytes: UInt64)
    }

    /// One store path of the fixture.
    public struct Item: Sendable {
        public let path: StorePath
        /// Sorted, possibly including `path` itself.
        public let references: [StorePath]
        public let content: Content
        /// The `.drv` the path claims to come from (never itself in the store, as on a
        /// machine that substituted the output).
        public let deriver: StorePath?
        /// Seeds this item's bytes.
        let contentSeed: UInt64
    }

    public let storeDirectory: StoreDirectory
    public let seed: UInt64
    /// Import order: each item's references come before it (or are the item itself).
    public let items: [Item]

    public var paths: [StorePath] { items.map(\.path) }

    /// Items no other item refers to (a closure fixture has exactly one, its root).
    public var roots: [StorePath] {
        var referenced = Set<StorePath>()
        for item in items { for r in item.references where r != item.path { referenced.insert(r) } }
        return items.map(\.path).filter { !referenced.contains($0) }
    }

    /// Full store paths (`/nix/store/...`) of every item, in import order.
    public var printedPaths: [String] { items.map { storeDirectory.print($0.path) } }

    /// `count` paths (about one in five a directory, the rest files of 32 bytes to 2 KiB)
    /// referring to earlier ones: chains (most paths refer to the one before), a handful of
    /// "base" paths many refer to, a few random references and some self-references.
    public static func make(count: Int, seed: UInt64 = 1, namePrefix: String = "fx",
                            storeDirectory: StoreDirectory = .default) throws -> StoreFixture {
        var gen = FixtureGenerator(seed: seed, salt: 0x6d61_6b65, storeDirectory: storeDirectory)
        try gen.addGraph(count: count, namePrefix: namePrefix)
        return StoreFixture(storeDirectory: storeDirectory, seed: seed, items: gen.items)
    }

    /// `size` paths whose closure is all of them: `make(count: size - 1)` plus a last path
    /// named `rootName` referring to every path nothing else refers to.
    public static func closure(size: Int, rootName: String = "closure-root", seed: UInt64 = 1,
                               storeDirectory: StoreDirectory = .default) throws -> StoreFixture {
        precondition(size >= 1, "a closure holds at least its root")
        var gen = FixtureGenerator(seed: seed, salt: 0x636c_6f73, storeDirectory: storeDirectory)
        try gen.addGraph(count: size - 1, namePrefix: "cl")
        let top = StoreFixture(storeDirectory: storeDirectory, seed: seed, items: gen.items).roots
        try gen.add(name: rootName, references: top, content: .file(size: 256))
        return StoreFixture(storeDirectory: storeDirectory, seed: seed, items: gen.items)
    }

    /// One path holding a single file of `mebibytes` MiB, streamed when written.
    public static func large(mebibytes: Int, name: String = "large", seed: UInt64 = 1,
                             storeDirectory: StoreDirectory = .default) throws -> StoreFixture {
        var gen = FixtureGenerator(seed: seed, salt: 0x6c61_7267, storeDirectory: storeDirectory)
        try gen.add(name: name, references: [], content: .large(bytes: UInt64(mebibytes) << 20))
        return StoreFixture(storeDirectory: storeDirectory, seed: seed, items: gen.items)
    }

    /// The items of `fixtures` one after the other (they must share a store directory).
    public static func combined(_ fixtures: [StoreFixture]) -> StoreFixture {
        precondition(!fixtures.isEmpty && Set(fixtures.map(\.storeDirectory)).count == 1,
                     "combined fixtures need one store directory")
        return StoreFixture(storeDirectory: fixtures[0].storeDirectory, seed: fixtures[0].seed,
                            items: fixtures.flatMap(\.items))
    }

    /// The items whose path is in `paths`, in the same order (references are kept, so the
    /// missing ones must already be in the store when this is imported).
    public func selecting(_ paths: Set<StorePath>) -> StoreFixture {
        StoreFixture(storeDirectory: storeDirectory, seed: seed, items: items.filter { paths.contains($0.path) })
    }

    // MARK: Writing

    /// Writes the `nix-store --export` stream of every item to `sink` and returns their path
    /// infos (narHash and narSize computed from the bytes written), in import order.
    @discardableResult
    public func writeExport(to sink: @escaping NARWriter.Sink) throws -> [PathInfo] {
        let stream = ExportStream(storeDirectory: storeDirectory, sink: sink)
        var infos: [PathInfo] = []
        infos.reserveCapacity(items.count)
        for item in items {
            infos.append(try stream.add(path: item.path, references: item.references, deriver: item.deriver) { nar in
                try FixtureContent.write(item, storeDirectory: storeDirectory, to: nar)
            })
        }
        try stream.finish()
        return infos
    }

    /// The path infos alone: the export stream is produced, hashed and thrown away.
    public func pathInfos() throws -> [PathInfo] {
        try writeExport(to: { _ in })
    }

    /// The NAR of one item, in memory (for small items).
    public func nar(of item: Item) throws -> [UInt8] {
        try NARWriter.collect { try FixtureContent.write(item, storeDirectory: storeDirectory, to: $0) }
    }
}

/// Builds the items of a fixture from one pseudo-random stream.
struct FixtureGenerator {
    var rng: SplitMix64
    let storeDirectory: StoreDirectory
    var items: [StoreFixture.Item] = []

    init(seed: UInt64, salt: UInt64, storeDirectory: StoreDirectory) {
        rng = SplitMix64(seed: seed ^ (salt &* 0x9e37_79b9_7f4a_7c15))
        self.storeDirectory = storeDirectory
    }

    /// Appends a path whose hash part comes from a random SHA-256, as a build output's would.
    mutating func add(name: String, references: [StorePath], selfReference: Bool = false,
                      content: StoreFixture.Content) throws {
        let digest = (0..<4).flatMap { _ in withUnsafeBytes(of: rng.next().littleEndian, Array.init) }
        let hash = try Hash(algorithm: .sha256, bytes: digest)
        let path = try storeDirectory.makeStorePath(type: "output:out", hash: hash, name: name)
        let refs = Set(references + (selfReference ? [path] : [])).sorted()
        let drvDigest = (0..<4).flatMap { _ in withUnsafeBytes(of: rng.next().littleEndian, Array.init) }
        let deriver = try storeDirectory.makeTextPath(name: name + ".drv", contentHash: try Hash(algorithm: .sha256, bytes: drvDigest),
                                                      references: [])
        items.append(.init(path: path, references: refs, content: content, deriver: deriver, contentSeed: rng.next()))
    }

    /// `count` paths in a DAG over themselves (and nothing before them).
    mutating func addGraph(count: Int, namePrefix: String) throws {
        let first = items.count
        let baseCount = min(10, count)
        for i in 0..<count {
            var refs: [StorePath] = []
            let earlier = items.count - first
            if earlier > 0 && rng.next() % 4 != 0 { refs.append(items[items.count - 1].path) }
            if earlier > baseCount && rng.next() % 2 == 0 { refs.append(items[first + Int(rng.next() % UInt64(baseCount))].path) }
            if earlier > 1 {
                for _ in 0..<Int(rng.next() % 3) { refs.append(items[first + Int(rng.next() % UInt64(earlier))].path) }
            }
            let isDirectory = i % 5 == 0
            let content: StoreFixture.Content = isDirectory
                ? .directory(files: 1 + Int(rng.next() % 4))
                : .file(size: 32 + Int(rng.next() % 2017))
            let name = "\(namePrefix)-\(i)-" + (isDirectory ? "dir" : "file")
            try add(name: name, references: refs, selfReference: i % 7 == 3, content: content)
        }
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
