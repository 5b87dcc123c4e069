import NixCore
@testable import NixWire
import Testing

struct FramingTests {
    @Test func primitivesAndPadding() throws {
        var w = WireWriter()
        w.writeU64(0x0102030405060708)
        w.writeBool(true)
        w.writeString("abc")
        w.writeString("")
        w.writeString("12345678")
        w.writeStrings(["x", "y"])
        w.writeStringSet(["b", "a", "ä", "B"])
        w.writeStringMap(["k2": "v2", "k1": "v1"])
        #expect(Array(w.bytes.prefix(8)) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(Array(w.bytes[16..<32]) == [3, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x62, 0x63, 0, 0, 0, 0, 0])
        #expect(w.bytes.count % 8 == 0)
        var r = WireReader(w.bytes)
        #expect(try r.readU64("n") == 0x0102030405060708)
        #expect(try r.readBool("b"))
        #expect(try r.readString("s") == "abc")
        #expect(try r.readString("s") == "")
        #expect(try r.readString("s") == "12345678")
        #expect(try r.readStrings("l") == ["x", "y"])
        // Sets sort by bytes, as std::set<std::string>.
        #expect(try r.readStrings("set") == ["B", "a", "b", "ä"])
        #expect(try r.readStringMap("m") == ["k1": "v1", "k2": "v2"])
        #expect(r.isAtEnd)
    }

    @Test func incompleteInputConsumesNothing() throws {
        var w = WireWriter()
        w.writeString("hello, world")
        var r = WireReader()
        for (i, b) in w.bytes.enumerated() {
            r.feed([b])
            let got = try r.attempt { (r: inout WireReader) throws(WireError) in try r.readString("s") }
            if i < w.bytes.count - 1 {
                #expect(got == nil)
                #expect(r.unreadCount == i + 1)
            } else {
                #expect(got == "hello, world")
                #expect(r.isAtEnd)
            }
        }
    }

    @Test func lengthsAreBounded() throws {
        let limits = WireLimits(maxStringLength: 1024, maxListCount: 100)
        var w = WireWriter()
        w.writeU64(1 << 40)
        var r = WireReader(w.bytes, limits: limits)
        #expect(throws: WireError.stringTooLong(reading: "name", length: 1 << 40, limit: 1024)) { try r.readString("name") }
        var r2 = WireReader(w.bytes, limits: limits)
        #expect(throws: WireError.tooManyItems(reading: "paths", count: 1 << 40, limit: 100)) { try r2.readStrings("paths") }
        // A count within limits but with no items behind it only waits for more.
        var w3 = WireWriter()
        w3.writeU64(100)
        var r3 = WireReader(w3.bytes, limits: limits)
        #expect(try r3.attempt { (r: inout WireReader) throws(WireError) in try r.readStrings("paths") } == nil)
        // Padding must be zeros.
        var r4 = WireReader([1, 0, 0, 0, 0, 0, 0, 0, 0x61, 0, 0, 1, 0, 0, 0, 0])
        #expect(throws: WireError.nonZeroPadding(reading: "s")) { try r4.readString("s") }
    }

    @Test func framedStreams() throws {
        let data = (0..<1000).map { UInt8($0 % 251) }
        let framed = FramedStream.encode(data, frameSize: 64)
        #expect(framed.count == data.count + (1000 / 64 + 1) * 8 + 8)
        var whole = WireReader(framed)
        #expect(try FramedStreamDecoder.decodeAll(from: &whole) == data)
        #expect(whole.isAtEnd)
        // Incrementally, one byte at a time.
        var dec = FramedStreamDecoder()
        var r = WireReader()
        var out: [UInt8] = []
        var ended = false
        for b in framed {
            r.feed([b])
            while !dec.finished, let e = try dec.next(from: &r) {
                switch e {
                case let .data(d): out += d
                case .end: ended = true
                }
            }
        }
        #expect(ended)
        #expect(out == data)
        #expect(FramedStream.encode([]) == [0, 0, 0, 0, 0, 0, 0, 0])
        // An oversized frame is refused before any allocation.
        var big = WireWriter()
        big.writeU64(UInt64(1) << 50)
        var rb = WireReader(big.bytes, limits: WireLimits(maxStringLength: 4096))
        var db = FramedStreamDecoder()
        #expect(throws: WireError.self) { try db.next(from: &rb) }
        var rb2 = WireReader(big.bytes, limits: WireLimits(maxStringLength: 4096))
        #expect(throws: WireError.self) { try FramedStreamDecoder.decodeAll(from: &rb2) }
    }

    @Test func stderrMessagesRoundTrip() throws {
        for minor in [21, 25, 26, 34, 38] {
            let ctx = WireContext(version: WorkerProtocolVersion(minor: minor))
            let msgs: [StderrMessage] = [
                .log(.next("line\n")), .log(.write([1, 2, 3])), .read(4096),
                .log(.startActivity(id: 1, level: 4, type: 100, text: "copying", fields: [.int(1), .string("s")], parent: 9)),
                .log(.stopActivity(id: 1)), .log(.result(id: 1, type: 106, fields: [.int(5)])),
                .error(minor >= 26 ? DaemonError(message: "m", level: 1, traces: ["t1", "t2"]) : DaemonError(message: "m", status: 100)),
                .last,
            ]
            var w = WireWriter()
            for m in msgs { m.write(to: &w, ctx) }
            var r = WireReader(w.bytes)
            for m in msgs { #expect(try StderrMessage.read(from: &r, ctx) == m) }
            #expect(r.isAtEnd)
        }
        var unknown = WireWriter()
        unknown.writeU64(0x12345)
        var r = WireReader(unknown.bytes)
        #expect(throws: WireError.unknownStderrMessage(0x12345)) { try StderrMessage.read(from: &r, WireContext(version: .nix28)) }
    }

    @Test func ansiIsStrippedForDisplayOnly() {
        let raw = "getting status of '\u{1b}[35;1m/tmp/x\u{1b}[0m': \u{1b}[35;1mNo such file or directory\u{1b}[0m"
        let e = DaemonError(message: raw)
        #expect(e.message == raw)
        #expect(e.displayMessage == "getting status of '/tmp/x': No such file or directory")
        #expect(e.description.hasSuffix("No such file or directory"))
    }

    /// Garbage after the handshake gives a typed error (or waits), never a crash, and never
    /// holds more than the bytes fed plus one bounded field.
    @Test func garbageGivesTypedErrors() throws {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<200 {
            var conn = WorkerConnection(limits: WireLimits(maxStringLength: 1 << 16, maxListCount: 1 << 12),
                                        narDetector: { TestNARDetector() })
            _ = conn.start()
            var hs = WireWriter()
            hs.writeU64(WorkerMagic.server)
            hs.writeU64(0x122)
            hs.writeString("2.8.0")
            hs.writeU64(StderrTag.last)
            _ = try conn.receive(hs.bytes)
            let requests: [WorkerRequest] = [.queryPathInfo(Samples.a), .narFromPath(Samples.a), .queryValidPaths([Samples.a], substitute: false)]
            _ = try conn.send(requests[round % 3])
            var garbage = WireWriter()
            garbage.writeU64(round % 2 == 0 ? StderrTag.last : StderrTag.next)
            garbage.writeRaw((0..<512).map { _ in UInt8.random(in: 0...255, using: &rng) })
            do {
                _ = try conn.receive(garbage.bytes)
                #expect(conn.bufferedByteCount <= garbage.bytes.count)
            } catch {
                // Once broken, the connection stays broken with the same typed error.
                #expect(throws: error) { try conn.receive([0]) }
            }
        }
    }

    @Test func oversizedReplyLengthIsRefused() throws {
        var conn = WorkerConnection(limits: WireLimits(maxStringLength: 1 << 20), narDetector: { TestNARDetector() })
        _ = conn.start()
        var hs = WireWriter()
        hs.writeU64(WorkerMagic.server)
        hs.writeU64(0x122)
        hs.writeString("2.8.0")
        hs.writeU64(StderrTag.last)
        _ = try conn.receive(hs.bytes)
        _ = try conn.send(.queryPathFromHashPart("x"))
        var w = WireWriter()
        w.writeU64(StderrTag.last)
        w.writeU64(UInt64.max)
        #expect(throws: WireError.stringTooLong(reading: "store path", length: UInt64.max, limit: 1 << 20)) { try conn.receive(w.bytes) }
    }
}
