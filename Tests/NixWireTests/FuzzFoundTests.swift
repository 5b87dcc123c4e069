import NixCore
import Testing
@testable import NixWire

/// NixCore's NARReader as the NarFromPath boundary detector, as the store client uses it.
struct ReaderDetector: NARBoundaryDetector {
    private var reader = NARReader()

    mutating func consume(_ bytes: ArraySlice<UInt8>) throws -> NARBoundaryProgress {
        let used = try bytes.withUnsafeBytes { try reader.feed($0) { _ in } }
        return NARBoundaryProgress(consumed: used, finished: reader.isComplete)
    }
}

/// Inputs the fuzz targets (Fuzz/Targets) found, kept so they stay fixed.
@Suite("Inputs found by fuzzing")
struct FuzzFoundTests {
    /// A connection after a real handshake with our own server at 1.`minor`.
    static func connected(minor: Int) throws -> WorkerConnection {
        var conn = WorkerConnection(version: WorkerProtocolVersion(minor: minor), narDetector: { ReaderDetector() })
        var server = WorkerServer(ours: WorkerProtocolVersion(minor: minor), info: ClientHandshakeInfo(daemonNixVersion: "test"))
        var toServer = conn.start()
        while conn.negotiatedVersion == nil {
            var toClient: [UInt8] = []
            for case let .write(b) in try server.receive(toServer) { toClient += b }
            toServer = []
            for case let .write(b) in try conn.receive(toClient) { toServer += b }
        }
        return conn
    }

    /// Whether feeding `pieces` breaks the connection.
    static func fails(_ pieces: [ArraySlice<UInt8>], requests: [WorkerRequest]) throws -> Bool {
        var conn = try connected(minor: 34)
        for r in requests { _ = try conn.send(r) }
        for piece in pieces {
            do { _ = try conn.receive(piece) } catch { return true }
        }
        return false
    }

    /// NarFromPath answered with garbage, and a STDERR_ERROR tag further on: whether that tag
    /// counts as the daemon's mid-NAR error must not depend on how the bytes arrive (it did:
    /// in one piece the later tag was found; cut after 16 bytes the connection failed).
    @Test func aMidNARErrorIsJudgedTheSameWhateverTheCuts() throws {
        let hex = "73746c610000000000000000000000000000000000000000000000000000000000000000000000000000ff00ffff0de51b1b0442040d212970747863000000000000001b001b"
        let bytes = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
            let s = hex.index(hex.startIndex, offsetBy: i)
            return UInt8(hex[s..<hex.index(s, offsetBy: 2)], radix: 16)!
        }
        let p = try StorePath(baseName: "0123456789abcdfghijklmnpqrsvwxyz-fuzz")
        let requests: [WorkerRequest] = [.narFromPath(p), .queryValidPaths([p], substitute: false),
                                         .queryPathFromHashPart(p.hashPart), .addSignatures(p, ["k:AAAA"]),
                                         .queryMissing([.opaque(p)])]
        let whole = try Self.fails([bytes[...]], requests: requests)
        for cut in stride(from: 8, to: bytes.count, by: 8) {
            #expect(try Self.fails([bytes[..<cut], bytes[cut...]], requests: requests) == whole, "cut at \(cut)")
        }
        // The NAR goes wrong at its first string, long before the tag: a corrupt stream.
        #expect(whole)
    }
}
