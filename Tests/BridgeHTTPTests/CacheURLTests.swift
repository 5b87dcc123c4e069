import Foundation
import NixCore
import TestSupport
import Testing
@testable import BridgeHTTP

/// How NAR URLs are written and read back, and which names are hash parts: the real nix
/// CLI makes the path and the hash, so the URLs are the ones a client will ask for.
@Suite("HTTP cache URLs")
struct CacheURLTests {
    @Test func narURLRoundTrips() throws {
        let hash = HashSink.hash(.sha256, Array("a NAR".utf8))
        let path = try StorePath(baseName: "0jqd0rlxzra1rs38rdxl43yh6rxchgc6-curl-7.82.0")
        let info = PathInfo(path: path, narHash: hash, narSize: 5)
        let url = CacheURL.nar(for: info)
        let nix32 = hash.string(.nix32, withAlgorithm: false)
        #expect(url == "nar/\(nix32).nar?hash=\(path.hashPart)")
        #expect(CacheURL.narRequest(file: "\(nix32).nar", hashQuery: path.hashPart)
                == .init(hashPart: path.hashPart, narHash: nix32))
        #expect(CacheURL.narRequest(file: "\(path.hashPart)-\(nix32).nar", hashQuery: nil)
                == .init(hashPart: path.hashPart, narHash: nix32))
    }

    @Test func rejectsWhatIsNotAHash() {
        let good = "0jqd0rlxzra1rs38rdxl43yh6rxchgc6"
        let nar = String(repeating: "1", count: 52)
        #expect(CacheURL.isHashPart(good))
        #expect(!CacheURL.isHashPart("0jqd0rlxzra1rs38rdxl43yh6rxchgc")) // 31 chars
        #expect(!CacheURL.isHashPart("ejqd0rlxzra1rs38rdxl43yh6rxchgc6")) // 'e' is not nix32
        #expect(CacheURL.narRequest(file: nar + ".nar", hashQuery: nil) == nil)
        #expect(CacheURL.narRequest(file: nar + ".nar.xz", hashQuery: good) == nil)
        #expect(CacheURL.narRequest(file: nar + ".nar", hashQuery: "x") == nil)
        #expect(CacheURL.narRequest(file: good + "_" + nar + ".nar", hashQuery: nil) == nil)
        #expect(CacheURL.narRequest(file: "../" + nar + ".nar", hashQuery: good) == nil)
    }

    @Test(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
    func namesOfARealPath() throws {
        let dir = try TestSupport.temporaryDirectory("nb-cacheurl")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("hello")
        try Data("hello\n".utf8).write(to: file)
        let printed = try TestSupport.run(["nix-store", "--store", "local?root=\(dir.path)/s", "--add", file.path]).trimmed
        let narHash = try TestSupport.run(["nix-store", "--store", "local?root=\(dir.path)/s", "-q", "--hash", printed]).trimmed
        let path = try StoreDirectory.default.parse(printed)
        let info = PathInfo(path: path, narHash: try Hash(parsing: narHash), narSize: 1)
        let url = CacheURL.nar(for: info)
        let file52 = url.dropFirst("nar/".count).prefix { $0 != "?" }
        #expect(CacheURL.narRequest(file: file52, hashQuery: path.hashPart)?.hashPart == path.hashPart)
        #expect(CacheURL.isHashPart(path.hashPart))
        #expect(narHash.hasPrefix("sha256:") && url.contains(narHash.dropFirst("sha256:".count)))
    }
}
