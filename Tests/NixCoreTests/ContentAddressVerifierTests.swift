import NixCore
import Testing

/// Content addresses checked against NAR contents as Nix does on import.
@Suite("ContentAddressVerifier and HashModuloSink")
struct ContentAddressVerifierTests {
    static let dir = StoreDirectory.default

    static func fileNAR(_ contents: String, executable: Bool = false) throws -> [UInt8] {
        try NARWriter.collect { try $0.file(executable: executable, contents: Array(contents.utf8)) }
    }

    /// The hash of `bytes` modulo `modulus`, fed in pieces cut at `cuts`.
    static func moduloHash(_ bytes: [UInt8], _ modulus: String, cuts: [Int]) -> Hash {
        let sink = HashModuloSink(.sha256, modulus: modulus)
        var start = 0
        for cut in cuts.sorted() + [bytes.count] where cut >= start && cut <= bytes.count {
            sink.update(Array(bytes[start..<cut]))
            start = cut
        }
        return sink.finalize()
    }

    @Test func withoutTheModulusTheHashIsThePlainOne() {
        let bytes = Array("no self reference in here".utf8)
        #expect(Self.moduloHash(bytes, String(repeating: "a", count: 32), cuts: [3, 10]) == HashSink.hash(.sha256, bytes))
    }

    @Test func occurrencesAreZeroedAndTheirPositionsHashed() {
        let m = "0123456789abcdfghijklmnpqrsvwxyz"
        let bytes = Array("x\(m)yy\(m)".utf8)
        // Nix: the rewritten bytes, then "|1|35".
        let zeroed = [UInt8]("x".utf8) + [UInt8](repeating: 0, count: 32) + Array("yy".utf8) + [UInt8](repeating: 0, count: 32)
        let expected = HashSink(.sha256)
        expected.update(zeroed)
        expected.update("|1|35")
        let want = expected.finalize()
        // The same whatever the chunking, including cuts inside an occurrence.
        for cut in 0...bytes.count {
            #expect(Self.moduloHash(bytes, m, cuts: [cut]) == want, "cut at \(cut)")
        }
        #expect(Self.moduloHash(bytes, m, cuts: Array(0...bytes.count)) == want)
    }

    @Test func flatAndTextNeedTheNARAndCheckTheFileContents() throws {
        let contents = "hello, flat world\n"
        let nar = try Self.fileNAR(contents)
        let sha1 = HashSink.hash(.sha1, string: contents)
        let flat = try Self.dir.makeFixedOutputPath(name: "flat", recursive: false, hash: sha1)
        let info = PathInfo(path: flat, narHash: HashSink.hash(.sha256, nar), narSize: UInt64(nar.count),
                            ca: .fixed(.flat, sha1))
        #expect(info.contentAddressCheck() == .needsContent)
        #expect(throws: Never.self) { try ContentAddressVerifier.check(nar, of: flat, against: .fixed(.flat, sha1), storeDir: Self.dir) }
        let other = try Self.fileNAR("hello, other world\n")
        #expect(throws: ContentAddressMismatch.self) { try ContentAddressVerifier.check(other, of: flat, against: .fixed(.flat, sha1), storeDir: Self.dir) }
        // A directory holding the right bytes is not a flat file.
        let tree = try NARWriter.collect { w in
            try w.directory()
            try w.entry(name: "f")
            try w.file(executable: false, contents: Array(contents.utf8))
            try w.endDirectory()
        }
        #expect(throws: ContentAddressMismatch.notRegularFile(path: Self.dir.print(flat), what: "a directory")) {
            try ContentAddressVerifier.check(tree, of: flat, against: .fixed(.flat, sha1), storeDir: Self.dir)
        }

        let sha256 = HashSink.hash(.sha256, string: contents)
        let text = try Self.dir.makeTextPath(name: "t", contentHash: sha256, references: [])
        let textInfo = PathInfo(path: text, narHash: HashSink.hash(.sha256, nar), narSize: UInt64(nar.count), ca: .text(sha256))
        #expect(textInfo.contentAddressCheck() == .needsContent)
        #expect(throws: Never.self) { try ContentAddressVerifier.check(nar, of: text, against: .text(sha256), storeDir: Self.dir) }
        #expect(throws: ContentAddressMismatch.self) { try ContentAddressVerifier.check(other, of: text, against: .text(sha256), storeDir: Self.dir) }
    }

    @Test func recursiveSHA256IsTiedToTheNARHash() throws {
        let nar = try Self.fileNAR("recursive\n")
        let narHash = HashSink.hash(.sha256, nar)
        let path = try Self.dir.makeFixedOutputPath(name: "src", recursive: true, hash: narHash)
        var info = PathInfo(path: path, narHash: narHash, narSize: UInt64(nar.count), ca: .fixed(.recursive, narHash))
        #expect(info.contentAddressCheck() == .valid)
        // A well-known fixed-output path paired with any other NAR (and its true hash).
        let other = try Self.fileNAR("something else entirely\n")
        info.narHash = HashSink.hash(.sha256, other)
        #expect(info.contentAddressCheck() == .hashMismatch(specified: narHash, narHash: info.narHash))
        #expect(throws: ContentAddressMismatch.hashMismatch(path: Self.dir.print(path), specified: narHash, got: info.narHash)) {
            try ContentAddressVerifier.check(other, of: path, against: .fixed(.recursive, narHash), storeDir: Self.dir)
        }
        // Errors name the path in the store it is imported into, as Nix prints it.
        let chroot = StoreDirectory("/tmp/chroot/nix/store")
        #expect {
            try ContentAddressVerifier.check(other, of: path, against: .fixed(.recursive, narHash), storeDir: chroot)
        } throws: { "\($0)".hasPrefix("ca hash mismatch importing path '/tmp/chroot/nix/store/\(path.baseName)';\n  specified: ") }
    }

    @Test func aSelfReferenceIsCheckedModuloThePathsHashPart() throws {
        let placeholder = try StorePath(baseName: "0123456789abcdfghijklmnpqrsvwxyz-selfref")
        let nar = try Self.fileNAR("I am \(Self.dir.print(placeholder))\n")
        let sink = HashModuloSink(.sha256, modulus: placeholder.hashPart)
        sink.update(nar)
        let h = sink.finalize()
        #expect(h != HashSink.hash(.sha256, nar))
        #expect(throws: Never.self) { try ContentAddressVerifier.check(nar, of: placeholder, against: .fixed(.recursive, h), storeDir: Self.dir) }
        let info = PathInfo(path: placeholder, narHash: HashSink.hash(.sha256, nar), references: [placeholder],
                            narSize: UInt64(nar.count), ca: .fixed(.recursive, h))
        // Its path does not follow from `h` (it was made up), but were it to, only the NAR could tell.
        #expect(info.contentAddressCheck() != .valid)
    }
}
