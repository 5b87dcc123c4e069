import Foundation
import Glibc
import NixCore
import TestSupport
import Testing

/// The HTTP binary cache under clients and builders that misbehave: a client that reads
/// slowly or stops reading costs a bounded amount and holds back only its own transfer; a
/// client that vanishes mid-NAR stops its transfer; a builder that cannot be asked makes
/// the answer an error (502), never a 404 that Nix would remember as a miss.
@Suite("HTTP binary cache faults", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.hostTools), .enabled(if: TestSupport.has("curl"), "needs curl"))
struct ServeFaultTests {
    func withFleet(_ label: String, largeMebibytes: Int = 8, stalledClientTimeout: Duration? = nil,
                   _ body: (HTTPScenario) async throws -> Void) async throws {
        let f = try await HTTPScenario.offPool {
            try HTTPScenario(label: label, largeMebibytes: largeMebibytes, stalledClientTimeout: stalledClientTimeout)
        }
        do {
            try await f.start()
            try await body(f)
        } catch {
            await f.stop()
            throw error
        }
        await f.stop()
    }

    func narInfo(_ f: HTTPScenario, _ path: StorePath) async throws -> NarInfo {
        let r = try await f.curl(path.hashPart + ".narinfo")
        try #require(r.status == 200, "\(f.printed(path)): \(r.status)")
        return try NarInfo(parsing: String(decoding: r.body, as: UTF8.self), whence: "served")
    }

    /// What the view pulled from builders, once it stopped growing for `quiet`.
    func settledPull(_ f: HTTPScenario, quiet: Duration = .milliseconds(500)) async throws -> UInt64 {
        var last = f.view.narBytesPulled
        for _ in 0..<40 {
            try await Task.sleep(for: quiet)
            let now = f.view.narBytesPulled
            if now == last { return now }
            last = now
        }
        return last
    }

    @Test func aStalledClientCostsAFewMiBAndHoldsBackOnlyItsOwnTransfer() async throws {
        try await withFleet("stalled", largeMebibytes: 32) { f in
            let large = try #require(f.large.paths.first)
            let info = try await narInfo(f, large)
            let size = info.pathInfo.narSize
            let slow = try await HTTPScenario.offPool { try SlowClient(port: f.port, path: "/" + info.url) }
            defer { slow.close() }
            _ = try await HTTPScenario.offPool { try slow.read(64 << 10) }
            let stalled = try await settledPull(f)
            #expect(stalled < 16 << 20, "a stalled client made the bridge pull \(stalled) of \(size) bytes")

            // Reading at 1 KiB/s: the transfer moves only as the client reads.
            for _ in 0..<3 {
                _ = try await HTTPScenario.offPool { try slow.read(1 << 10) }
                try await Task.sleep(for: .seconds(1))
            }
            let slowPull = try await settledPull(f)
            #expect(slowPull < 16 << 20, "a slow client made the bridge pull \(slowPull) of \(size) bytes")

            // Other clients of the same builder are served meanwhile: narinfos, a small NAR,
            // and the same large NAR whole (each transfer has its own connection).
            let clock = ContinuousClock()
            let started = clock.now
            let small = try #require(f.only2.paths.first)
            let smallInfo = try await narInfo(f, small)
            let smallNAR = try await f.curl(smallInfo.url)
            #expect(smallNAR.status == 200 && UInt64(smallNAR.body.count) == smallInfo.pathInfo.narSize)
            let whole = f.work.appendingPathComponent("whole.nar").path
            let out = try await f.run(["curl", "-sS", "-o", whole, "-w", "%{http_code}", "\(f.url)/\(info.url)"])
            #expect(out.text == "200")
            #expect(try Self.sha256(whole) == info.pathInfo.narHash)
            #expect(clock.now - started < .seconds(20), "other transfers waited for the stalled client")

            // The slow client vanishes mid-NAR: its transfer stops pulling, the cache goes on.
            let beforeVanish = try await settledPull(f)
            slow.close()
            try await Task.sleep(for: .seconds(1))
            let afterVanish = try await settledPull(f)
            #expect(afterVanish - beforeVanish < 4 << 20, "after the client left, \(afterVanish - beforeVanish) more bytes were pulled")
            #expect(try await f.curl(small.hashPart + ".narinfo").status == 200)
        }
    }

    @Test func aClientThatStopsReadingIsCutOffAfterTheStallTimeout() async throws {
        try await withFleet("cut", largeMebibytes: 32, stalledClientTimeout: .seconds(2)) { f in
            let large = try #require(f.large.paths.first)
            let info = try await narInfo(f, large)
            let size = Int(info.pathInfo.narSize)
            let clock = ContinuousClock()
            // Reads a little, then stops.
            let slow = try await HTTPScenario.offPool { try SlowClient(port: f.port, path: "/" + info.url) }
            defer { slow.close() }
            _ = try await HTTPScenario.offPool { try slow.read(64 << 10) }
            let stalled = clock.now
            // A client of the same NAR beside it, at 8 MiB/s: it runs past the cut and must
            // not be cut. (curl keeps its rate by pausing after a burst: at 4 MiB/s and
            // several MiB of socket buffers a pause can near the 2 s timeout here.)
            let whole = f.work.appendingPathComponent("whole.nar").path
            async let normal = f.run(["curl", "-sS", "--limit-rate", "8M", "-o", whole, "-w", "%{http_code}", "\(f.url)/\(info.url)"],
                                     check: false)

            // The stalled client is cut off within the timeout (plus the check's quarter of
            // it and a loaded machine's slack), and the log names it and the path.
            var cut: String?
            while cut == nil, clock.now - stalled < .seconds(15) {
                cut = f.logged.lines.first { $0.contains("read nothing") }
                if cut == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let after = clock.now - stalled
            let line = try #require(cut, "no stall was logged: \(f.logged.lines)")
            #expect(after >= .seconds(2) && after < .seconds(6), "cut after \(after)")
            #expect(line.contains("client [IPv4]127.0.0.1"), "\(line)")
            #expect(line.contains(f.printed(large)), "\(line)")
            // What it can still read is what the kernel buffered before the cut, then the end.
            let rest = try await HTTPScenario.offPool { try slow.read(size) }
            #expect(64 << 10 + rest < size, "the stalled client got the whole NAR")
            // The other client got the whole NAR: its hash, and Nix restores it.
            let done = try await normal
            #expect(done.text == "200", "\(done.stderr); logged: \(f.logged.lines)")
            // Both transfers ended: the builder is no longer pulled for either.
            let settled = try await settledPull(f)
            try await Task.sleep(for: .seconds(1))
            #expect(try await settledPull(f) == settled)
            #expect(try Self.sha256(whole) == info.pathInfo.narHash)
            let restored = f.work.appendingPathComponent("restored").path
            _ = try await f.run(["sh", "-c", "nix-store --restore '\(restored)' < '\(whole)'"])
            #expect(FileManager.default.fileExists(atPath: restored))
            #expect(f.logged.lines.filter { $0.contains("read nothing") }.count == 1, "\(f.logged.lines)")
        }
    }

    @Test func aBuilderThatCannotBeAskedIsABadGatewayNotAMiss() async throws {
        try await withFleet("down") { f in
            // Served while builder 2 is up: this narinfo's NAR is asked for after it is down.
            let servedBefore = try await narInfo(f, f.only2.paths[1])
            f.fleet.stop(builder: 2)
            await f.view.lookup.stores[1].close()

            // Held only by builder 2, never asked about: the fleet cannot tell.
            let r = try await f.curl(f.only2.paths[2].hashPart + ".narinfo")
            #expect(r.status == 502, "\(r.status) \(String(decoding: r.body, as: UTF8.self))")
            #expect(String(decoding: r.body, as: UTF8.self).contains("ssh-ng://builder2"))
            // Held by nobody: with a builder unreachable that is not known either.
            let absent = String(repeating: "0", count: 32)
            #expect(try await f.curl(absent + ".narinfo").status == 502)
            // Held by builder 1: served.
            #expect(try await f.curl(f.shared.paths[0].hashPart + ".narinfo").status == 200)
            // The NAR of a narinfo served before: no builder can send it, so no 200.
            let nar = try await f.curl(servedBefore.url)
            #expect(nar.status == 502, "\(nar.status) \(String(decoding: nar.body, as: UTF8.self))")

            // The real Nix sees an error, not "not valid" (which it would cache for an hour).
            let out = try await f.nix(["path-info", "--option", "download-attempts", "1", "--store", f.url,
                                       f.printed(f.only2.paths[2])], check: false)
            #expect(out.status != 0)
            #expect(out.stderr.contains("502"), "\(out.stderr)")
            #expect(!out.stderr.contains("is not valid"), "\(out.stderr)")
        }
    }

    static func sha256(_ file: String) throws -> Hash {
        HashSink.hash(.sha256, [UInt8](try Data(contentsOf: URL(fileURLWithPath: file))))
    }
}

/// An HTTP client on a plain socket with a small receive buffer, that reads only as much
/// as it is told to: a client on a slow or stalled link.
final class SlowClient: @unchecked Sendable {
    private var fd: Int32

    init(port: Int, path: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SigningFixtures.Failure("socket: \(errno)") }
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw SigningFixtures.Failure("connect: \(errno)") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { throw SigningFixtures.Failure("send: \(errno)") }
    }

    /// Reads `count` bytes (headers included), or fewer if the server closed.
    @discardableResult
    func read(_ count: Int) throws -> Int {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var got = 0
        while got < count {
            let n = recv(fd, &buffer, min(buffer.count, count - got), 0)
            if n == 0 { break }
            guard n > 0 else { throw SigningFixtures.Failure("recv: \(errno)") }
            got += n
        }
        return got
    }

    func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }
}
