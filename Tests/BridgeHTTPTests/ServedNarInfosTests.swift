import NIOCore
import NixCore
import Testing
@testable import BridgeHTTP

/// The in-memory narinfo answers: kept for their TTL, never more than the capacity.
@Suite("served narinfos")
struct ServedNarInfosTests {
    func info(_ i: Int) throws -> PathInfo {
        let hash = HashSink.hash(.sha256, Array("nar \(i)".utf8))
        let part = Nix32.encode(hash.bytes.prefix(20))
        return PathInfo(path: try StorePath(baseName: "\(part)-p\(i)"), narHash: hash, narSize: UInt64(100 + i))
    }

    @Test func keepsAnswersForTheirTTL() async throws {
        let served = ServedNarInfos(ttl: .milliseconds(200))
        let a = try info(1)
        served.put(a.path.hashPart, info: a, text: ByteBuffer(string: "text"))
        #expect(served.get(a.path.hashPart)?.info == a)
        #expect(served.get(a.path.hashPart)?.text == ByteBuffer(string: "text"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(served.get(a.path.hashPart) == nil)
        #expect(served.count == 0)
    }

    @Test func zeroTTLKeepsNothing() throws {
        let served = ServedNarInfos(ttl: .zero)
        let a = try info(1)
        served.put(a.path.hashPart, info: a, text: ByteBuffer(string: "text"))
        #expect(served.get(a.path.hashPart) == nil)
    }

    @Test func staysWithinCapacity() throws {
        let served = ServedNarInfos(ttl: .seconds(60), capacity: 100)
        var last: PathInfo?
        for i in 0..<1_000 {
            let x = try info(i)
            served.put(x.path.hashPart, info: x, text: ByteBuffer(string: "\(i)"))
            last = x
        }
        #expect(served.count <= 100)
        let newest = try #require(last)
        #expect(served.get(newest.path.hashPart)?.info == newest, "the newest answer is kept")
    }
}
