import Foundation
import NixCore
import Testing
@testable import Bridge

/// The one check every NAR passes through: bounded by narSize, hashed on the way, the last
/// chunk released only once the whole NAR matched. The peer here is a lying one, which no
/// real daemon can play, so the bytes are fed directly.
struct VerifiedNARStreamTests {
    static let nar: [UInt8] = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    static let chunks: [[UInt8]] = stride(from: 0, to: nar.count, by: 3_000).map {
        Array(nar[$0..<min($0 + 3_000, nar.count)])
    }
    static func hash(_ bytes: [UInt8]) -> Hash {
        let sink = NARHashSink()
        bytes.withUnsafeBytes { sink.update($0) }
        return sink.finalize().narHash
    }

    /// What reached the receiver, chunk by chunk.
    final class Received: @unchecked Sendable {
        private let lock = NSLock()
        private var chunks: [[UInt8]] = []
        func append(_ bytes: [UInt8]) { lock.withLock { chunks.append(bytes) } }
        var all: [[UInt8]] { lock.withLock { chunks } }
        var bytes: [UInt8] { all.flatMap { $0 } }
    }

    func stream(narHash: Hash = hash(nar), narSize: UInt64 = UInt64(nar.count), holdBack: UInt64 = 0)
        -> (VerifiedNARStream, Received) {
        let got = Received()
        let s = VerifiedNARStream(path: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x", narHash: narHash,
                                  narSize: narSize, holdBack: holdBack) { got.append($0) }
        return (s, got)
    }

    @Test("right hash and size: each chunk is released when the next arrives, the last only after the match")
    func rightHash() async throws {
        let (s, got) = stream()
        for (i, chunk) in Self.chunks.enumerated() {
            let sizes = try await s.receive(chunk)
            #expect(sizes.after == sizes.before + UInt64(chunk.count))
            #expect(got.all == Array(Self.chunks[..<i]), "chunk \(i) is held until the next one")
        }
        #expect(s.received == UInt64(Self.nar.count))
        #expect(got.bytes.count == Self.nar.count - Self.chunks.last!.count)
        try await s.finish()
        #expect(got.bytes == Self.nar)
        #expect(s.forwarded == UInt64(Self.nar.count))
    }

    @Test("too many bytes: the chunk that crosses narSize fails at once and is not forwarded")
    func tooManyBytes() async throws {
        let (s, got) = stream(narSize: UInt64(Self.nar.count - 1))
        for chunk in Self.chunks.dropLast() { try await s.receive(chunk) }
        let error = await #expect(throws: VerifiedNARStream.Mismatch.self) { try await s.receive(Self.chunks.last!) }
        #expect(error?.what == "more than the \(Self.nar.count - 1) bytes of its narSize")
        #expect(error?.description.contains("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x") == true)
        #expect(got.all == Array(Self.chunks.dropLast(2)), "the chunk before stays held")
        await #expect(throws: VerifiedNARStream.Mismatch.self) { try await s.finish() }
        #expect(got.all == Array(Self.chunks.dropLast(2)))
    }

    @Test("too few bytes: finish fails and the last chunk is never released")
    func tooFewBytes() async throws {
        let (s, got) = stream(narSize: UInt64(Self.nar.count + 1))
        for chunk in Self.chunks { try await s.receive(chunk) }
        let error = await #expect(throws: VerifiedNARStream.Mismatch.self) { try await s.finish() }
        #expect(error?.what == "narSize \(Self.nar.count), expected \(Self.nar.count + 1)")
        #expect(got.all == Array(Self.chunks.dropLast()))
    }

    @Test("wrong hash: finish fails and the last chunk is never released")
    func wrongHash() async throws {
        var other = Self.nar
        other[other.count - 1] ^= 1
        let (s, got) = stream(narHash: Self.hash(other))
        for chunk in Self.chunks { try await s.receive(chunk) }
        let error = await #expect(throws: VerifiedNARStream.Mismatch.self) { try await s.finish() }
        #expect(error?.what.hasPrefix("narHash sha256:") == true)
        #expect(got.all == Array(Self.chunks.dropLast()))
        #expect(s.forwarded == UInt64(Self.nar.count - Self.chunks.last!.count))
    }

    @Test("holdBack: nothing is forwarded until more than holdBack bytes arrived, so a small NAR can fail over")
    func holdBack() async throws {
        let (whole, wholeGot) = stream(holdBack: UInt64(Self.nar.count))
        for chunk in Self.chunks { try await whole.receive(chunk) }
        #expect(whole.forwarded == 0)
        try await whole.finish()
        #expect(wholeGot.all == [Self.nar], "a NAR held whole arrives as one chunk")

        let (s, got) = stream(holdBack: 4_000)
        try await s.receive(Self.chunks[0])
        #expect(s.forwarded == 0)
        try await s.receive(Self.chunks[1])
        #expect(got.all == [Self.chunks[0]])
        try await s.receive(Self.chunks[2])
        try await s.receive(Self.chunks[3])
        try await s.finish()
        #expect(got.bytes == Self.nar)
    }

    @Test("a receiver that fails: its error, as is")
    func receiverFails() async throws {
        struct Gone: Error {}
        let s = VerifiedNARStream(path: "p", narHash: Self.hash(Self.nar), narSize: UInt64(Self.nar.count)) { _ in
            throw Gone()
        }
        try await s.receive(Self.chunks[0])
        await #expect(throws: Gone.self) { try await s.receive(Self.chunks[1]) }
    }
}
