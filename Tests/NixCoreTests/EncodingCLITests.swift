import Foundation
import NixCore
import Testing
import TestSupport

/// Nix32, Base16, Base64 and SRI of random digests against `nix hash to-*` (nix 2.8).
@Suite(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct EncodingCLITests {
    static func randomHashes(_ algorithm: HashAlgorithm, count: Int = 6) throws -> [Hash] {
        var g = SystemRandomNumberGenerator()
        var hashes = try (0..<count).map { _ in
            try Hash(algorithm: algorithm, bytes: (0..<algorithm.size).map { _ in UInt8.random(in: 0...255, using: &g) })
        }
        // Edge digests: all zero and all ones bits.
        hashes.append(try Hash(algorithm: algorithm, bytes: [UInt8](repeating: 0, count: algorithm.size)))
        hashes.append(try Hash(algorithm: algorithm, bytes: [UInt8](repeating: 0xff, count: algorithm.size)))
        return hashes
    }

    /// One `nix hash to-<format>` call converting all `inputs`, one output line each.
    static func nixConvert(_ format: String, _ algorithm: HashAlgorithm, _ inputs: [String]) throws -> [String] {
        let out = try TestSupport.nix(["hash", "to-" + format, "--type", algorithm.rawValue] + inputs)
        return out.text.split(separator: "\n").map(String.init)
    }

    @Test(arguments: HashAlgorithm.allCases)
    func printsLikeNix(_ algorithm: HashAlgorithm) throws {
        let hashes = try Self.randomHashes(algorithm)
        let base16 = hashes.map { $0.string(.base16, withAlgorithm: false) }
        #expect(try Self.nixConvert("base32", algorithm, base16) == hashes.map { $0.string(.nix32, withAlgorithm: false) })
        #expect(try Self.nixConvert("base64", algorithm, base16) == hashes.map { $0.string(.base64, withAlgorithm: false) })
        #expect(try Self.nixConvert("sri", algorithm, base16) == hashes.map { $0.string(.sri) })
        let nix32 = hashes.map { $0.string(.nix32, withAlgorithm: false) }
        #expect(try Self.nixConvert("base16", algorithm, nix32) == base16)
    }

    @Test(arguments: HashAlgorithm.allCases)
    func parsesEveryForm(_ algorithm: HashAlgorithm) throws {
        for hash in try Self.randomHashes(algorithm) {
            for format in [HashFormat.base16, .nix32, .base64] {
                #expect(try Hash(parsing: hash.string(format)) == hash)
                #expect(try Hash(parsing: hash.string(format, withAlgorithm: false), algorithm: algorithm) == hash)
            }
            #expect(try Hash(parsing: hash.string(.sri)) == hash)
        }
    }

    /// e, o, u and t are not nix32 digits; nix refuses them and so do we.
    @Test(arguments: ["e", "o", "u", "t"])
    func refusesNonNix32Characters(_ letter: String) throws {
        let hash = try #require(try Self.randomHashes(.sha256).first)
        var chars = Array(hash.string(.nix32, withAlgorithm: false))
        chars[chars.count - 1] = Character(letter)
        let bad = "sha256:" + String(chars)
        #expect(try TestSupport.nix(["hash", "to-base16", bad], check: false).status != 0)
        let error = try #require(throws: HashParseError.self) { try Hash(parsing: bad) }
        guard case .badEncoding(_, .badCharacter(encoding: "nix32", _, Character(letter))) = error else {
            Issue.record("unexpected \(error)")
            return
        }
    }

    /// 52 nix32 digits carry 260 bits: a first digit above 1 overflows SHA-256's 256.
    @Test func refusesNix32Overflow() throws {
        let zero = [Character](repeating: "0", count: 52)
        for (first, fits) in [("1", true), ("2", false), ("z", false)] {
            let s = "sha256:" + first + String(zero.dropFirst())
            let nixOK = try TestSupport.nix(["hash", "to-base16", s], check: false).status == 0
            #expect(nixOK == fits)
            if fits {
                #expect(try Hash(parsing: s).string(.nix32) == s)
            } else {
                #expect(throws: HashParseError.badEncoding(input: s, .overflow(encoding: "nix32", input: String(s.dropFirst(7))))) {
                    try Hash(parsing: s)
                }
            }
        }
    }
}
