import Foundation
import NixCore
import Testing
import TestSupport

/// Upstream Nix's NAR golden files (src/libutil-tests/data/nars) with the outcomes upstream's
/// archive.cc tests expect, each parsed in several chunk sizes.
@Suite(.tags(.upstreamVectors), .enabled(if: TestSupport.vectorSuitesRun, "needs the upstream Nix vectors"))
struct NARVectorTests {
    static func vector(_ name: String) throws -> [UInt8] {
        let dir = try #require(TestSupport.upstreamVectors).appendingPathComponent("libutil-tests/data/nars")
        return Array(try Data(contentsOf: dir.appendingPathComponent(name + ".nar")))
    }

    static let chunkSizes = [1, 7, 4096, Int.max]

    /// Name, upstream's expected message, and the offset of the offending string.
    static let invalid: [(String, String, UInt64)] = [
        ("invalid-tag-instead-of-contents", "expected tag 'contents', got 'AAAAAAAA'", 0x48),
        ("nul-character", "NAR contains invalid file name 'f", 0x80),
        ("dot", "NAR contains invalid file name '.'", 0x80),
        ("dotdot", "NAR contains invalid file name '..'", 0x80),
        ("slash", "NAR contains invalid file name 'x/y'", 0x80),
        ("empty", "NAR contains invalid file name ''", 0x80),
        ("executable-after-contents", "expected tag ')', got 'executable'", 0xf0),
        ("name-after-node", "expected tag 'name'", 0x70),
    ]

    @Test(arguments: invalid)
    func invalidNARIsRejected(_ name: String, _ message: String, _ offset: UInt64) throws {
        let nar = try Self.vector(name)
        for chunk in Self.chunkSizes {
            let error = try #require(throws: NARError.self) { try ChunkedParse(nar, chunk: chunk) }
            #expect(error.message.contains(message), "\(name) chunk \(chunk): \(error)")
            #expect(error.offset == offset, "\(name) chunk \(chunk): \(error)")
            #expect(error.description.hasPrefix("NAR: at offset \(offset): "))
        }
    }

    @Test func oneByteFileParsesToItsEnd() throws {
        let nar = try Self.vector("regular-one-byte-zero-padding")
        for chunk in Self.chunkSizes {
            let parse = try ChunkedParse(nar, chunk: chunk)
            #expect(parse.consumed == UInt64(nar.count))
            #expect(parse.trailing.isEmpty)
            let x = HashSink.hash(.sha256, Array("x".utf8)).string(.base16, withAlgorithm: false)
            #expect(parse.events == ["regular executable=false size=1", "contents 1 \(x)"])
        }
        #expect(try NARReader.validate(nar) == UInt64(nar.count))
    }

    @Test func nonZeroContentPaddingIsRejected() throws {
        let nar = try Self.vector("regular-one-byte-non-zero-padding")
        for chunk in Self.chunkSizes {
            let error = try #require(throws: NARError.self) { try ChunkedParse(nar, chunk: chunk) }
            #expect(error.kind == .nonZeroPadding)
            #expect(error.offset == 0x61)
            #expect(error.message.contains("non-zero padding"))
        }
    }

    @Test(arguments: ["regular-truncated-large-contents", "regular-truncated-padding"])
    func truncatedNARIsRejected(_ name: String) throws {
        let nar = try Self.vector(name)
        for chunk in Self.chunkSizes {
            let error = try #require(throws: NARError.self) { try ChunkedParse(nar, chunk: chunk) }
            guard case .truncated = error.kind else {
                Issue.record("\(name): expected truncation, got \(error)")
                continue
            }
            #expect(error.offset == UInt64(nar.count))
        }
    }

    @Test func trailingBytesRemainUnread() throws {
        let nar = try Self.vector("regular-one-byte-zero-padding")
        let sentinel = Array("sentinel".utf8)
        for chunk in Self.chunkSizes {
            let parse = try ChunkedParse(nar + sentinel, chunk: chunk)
            #expect(parse.consumed == UInt64(nar.count))
            #expect(parse.trailing == sentinel)
        }
        let error = try #require(throws: NARError.self) { try NARReader.validate(nar + sentinel) }
        #expect(error.kind == .trailingBytes(count: 8))
    }

    /// Upstream's Hash JSON vectors: both files hold SHA-256("asdf") in SRI form (the
    /// sha512.json one too, as upstream's test declares it). blake3.json is skipped: neither
    /// nix-bridge nor nix 2.8 knows BLAKE3, so it must be refused as an unknown algorithm.
    @Test func hashJSONVectors() throws {
        let dir = try #require(TestSupport.upstreamVectors).appendingPathComponent("libutil-tests/data/hash")
        let asdf = HashSink.hash(.sha256, string: "asdf")
        for file in ["sha256.json", "sha512.json"] {
            let json = try JSONDecoder().decode(String.self, from: Data(contentsOf: dir.appendingPathComponent(file)))
            #expect(try Hash(parsing: json) == asdf)
            #expect(asdf.string(.sri) == json)
        }
        let blake3 = try JSONDecoder().decode(String.self, from: Data(contentsOf: dir.appendingPathComponent("blake3.json")))
        #expect(throws: HashParseError.unknownAlgorithm(input: blake3, name: "blake3")) { try Hash(parsing: blake3) }
    }
}
