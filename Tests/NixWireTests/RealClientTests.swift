import Foundation
import NixCore
@testable import NixWire
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// NixWire's server side (handshake, request decoder, stderr and reply encoders) answering
/// the real Nix 2.8 client over a Unix socket (`--store unix://PATH`).
@Suite(.tags(.realNix), .enabled(if: DaemonProcess.isAvailable, "needs the nix CLI (nix-bin)"))
struct RealClientTests {
    /// A one-thread socket server: one connection at a time, each until the client hangs up.
    final class Server: @unchecked Sendable {
        let path: String
        let fd: Int32
        let known: [StorePath: PathInfo]
        private let lock = NSLock()
        private var _requests: [WorkerRequest] = []
        private var _errors: [String] = []
        var requests: [WorkerRequest] { lock.withLock { _requests } }
        var errors: [String] { lock.withLock { _errors } }

        init(path: String, known: [StorePath: PathInfo]) throws {
            self.path = path
            self.known = known
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { buf in
                for (i, b) in path.utf8.enumerated() where i < buf.count - 1 { buf[i] = b }
            }
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard ok == 0, listen(fd, 4) == 0 else { throw POSIXError(.EADDRINUSE) }
            Thread.detachNewThread { self.acceptLoop() }
        }

        private func acceptLoop() {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                do { try serve(c) } catch { lock.withLock { _errors.append("\(error)") } }
                close(c)
            }
        }

        private func send(_ c: Int32, _ bytes: [UInt8]) {
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { Glibc.write(c, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                off += n
            }
        }

        private func serve(_ c: Int32) throws {
            var hs = ServerHandshake(ours: .latest, info: ClientHandshakeInfo(daemonNixVersion: "nixwire-test", remoteTrustsUs: .trusted))
            var r = WireReader()
            var ctx: WireContext?
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(c, &buf, buf.count)
                if n <= 0 { return }
                r.feed(buf[0..<n])
                if ctx == nil {
                    for a in try hs.receive(from: &r) {
                        switch a {
                        case let .write(b): send(c, b)
                        case let .completed(res): ctx = WireContext(version: res.version)
                        }
                    }
                    guard ctx != nil else { continue }
                }
                while let req = try WorkerRequest.read(from: &r, ctx!) {
                    lock.withLock { _requests.append(req) }
                    var w = WireWriter()
                    StderrMessage.log(.next("NixWire server handling \(req.op)\n")).write(to: &w, ctx!)
                    switch req {
                    case .setOptions: w.writeRaw(try WorkerResponse.done.encodedReply(for: .setOptions, ctx!))
                    case let .isValidPath(p): w.writeRaw(try WorkerResponse.valid(known[p] != nil).encodedReply(for: .isValidPath, ctx!))
                    case let .queryPathInfo(p): w.writeRaw(try WorkerResponse.pathInfo(known[p]).encodedReply(for: .queryPathInfo, ctx!))
                    case let .queryValidPaths(ps, _):
                        w.writeRaw(try WorkerResponse.validPaths(ps.filter { known[$0] != nil }).encodedReply(for: .queryValidPaths, ctx!))
                    case let .queryMissing(targets):
                        // Nothing to build or fetch here; unknown paths are reported unknown.
                        let unknown = Set(targets.compactMap { t -> StorePath? in
                            if case let .opaque(p) = t, known[p] == nil { return p } else { return nil }
                        })
                        w.writeRaw(try WorkerResponse.missing(MissingInfo(unknown: unknown)).encodedReply(for: .queryMissing, ctx!))
                    default:
                        StderrMessage.error(DaemonError(message: "NixWire test server does not do \(req.op)")).write(to: &w, ctx!)
                    }
                    send(c, w.bytes)
                }
            }
        }

        deinit {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
    }

    @Test func realNixQueriesOurServer() throws {
        let dir = try TestSupport.temporaryDirectory("nixwire-sock")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = Samples.a
        let info = PathInfo(path: path, deriver: Samples.drv, narHash: Samples.hash, references: [Samples.b], registrationTime: 1_700_000_000,
                            narSize: 4242, ultimate: false, sigs: ["cache.example.org-1:" + String(repeating: "A", count: 86) + "=="],
                            ca: nil)
        let server = try Server(path: dir.appendingPathComponent("sock").path, known: [path: info])
        let store = "unix://" + server.path
        let full = StoreDirectory.default.print(path)

        let ping = try TestSupport.nix(["store", "ping", "--store", store])
        #expect(ping.text.contains(store) || ping.stderr.contains(store), "\(ping.text) \(ping.stderr)")

        let out = try TestSupport.nix(["path-info", "--json", "--store", store, full])
        let cli = try #require((try JSONSerialization.jsonObject(with: out.stdout) as? [[String: Any]])?.first)
        #expect(cli["path"] as? String == full)
        #expect(cli["narHash"] as? String == Samples.hash.string(.sri))
        #expect(cli["narSize"] as? Int == 4242)
        #expect(cli["deriver"] as? String == StoreDirectory.default.print(Samples.drv))
        #expect(cli["references"] as? [String] == [StoreDirectory.default.print(Samples.b)])
        #expect(cli["signatures"] as? [String] == Array(info.sigs))

        let missing = try TestSupport.nix(["path-info", "--store", store, StoreDirectory.default.print(Samples.b)], check: false)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("is not valid"), "\(missing.stderr)")
        #expect(server.errors.isEmpty, "\(server.errors)")
        #expect(server.requests.contains(.queryPathInfo(path)))
    }
}
