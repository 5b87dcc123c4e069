import Foundation
import NixCore

/// A NAR on its way from a source to a receiver, checked as it passes against the narHash
/// and narSize of the path info we act on, and against its content address when it claims
/// one (as Nix checks on import: flat and text addresses are only proved by the contents). Every NAR that crosses nix-bridge goes through
/// one: substitution (`Substituter`, `SubstitutionRun`), build copy-back (`PathCopy`) and
/// serving (`FleetView`).
///
/// - Bytes beyond narSize fail at once, so a lying peer cannot make us forward, or hold,
///   more than its info promised.
/// - The first `holdBack` bytes, and after them always the latest chunk, are kept back until
///   the whole NAR matched. Without its last bytes a receiver cannot finish parsing the NAR,
///   so it registers nothing whatever happens afterwards; while nothing was forwarded yet,
///   the caller can still turn to another source.
/// - `forward` is awaited before `receive` returns, so a slow receiver slows the source down.
///   Rules about how a transfer may proceed (back-pressure limits, cut-offs for a stalling
///   peer) belong here, beside the check, so that all three uses share them.
final class VerifiedNARStream: @unchecked Sendable {
    typealias Receiver = @Sendable ([UInt8]) async throws -> Void

    /// The bytes are not the NAR the info describes.
    struct Mismatch: Error, Sendable, CustomStringConvertible {
        var path: String
        var what: String
        var description: String { "NAR for '\(path)' does not match its path info: \(what)" }
    }

    /// The printed store path, for errors.
    let path: String
    let narHash: Hash
    let narSize: UInt64
    let holdBack: UInt64
    private let forward: Receiver
    private let lock = NSLock()
    private let hash = NARHashSink()
    private let contentAddress: ContentAddressVerifier?
    private var held: [UInt8] = []
    private var forwardedBytes: UInt64 = 0
    private var finished = false

    init(path: String, narHash: Hash, narSize: UInt64, holdBack: UInt64 = 0,
         contentAddress: ContentAddressVerifier? = nil, forward: @escaping Receiver) {
        self.path = path
        self.contentAddress = contentAddress
        self.narHash = narHash
        self.narSize = narSize
        self.holdBack = holdBack
        self.forward = forward
    }

    convenience init(_ info: PathInfo, storeDir: StoreDirectory, holdBack: UInt64 = 0, forward: @escaping Receiver) {
        self.init(path: storeDir.print(info.path), narHash: info.narHash, narSize: info.narSize,
                  holdBack: holdBack, contentAddress: ContentAddressVerifier(info, storeDir: storeDir), forward: forward)
    }

    /// Bytes received so far.
    var received: UInt64 { lock.withLock { hash.narSize } }
    /// Bytes handed to the receiver so far (counted before it is awaited): once non-zero,
    /// the receiver has part of this NAR and another source cannot take over.
    var forwarded: UInt64 { lock.withLock { forwardedBytes } }

    /// Checks the next bytes and forwards what no longer needs holding back. Returns the
    /// NAR's size before and after them.
    @discardableResult
    func receive(_ bytes: [UInt8]) async throws -> (before: UInt64, after: UInt64) {
        let (ready, before, after) = try lock.withLock { () throws -> ([UInt8], UInt64, UInt64) in
            let before = hash.narSize
            guard !finished, UInt64(bytes.count) <= narSize - before else {
                throw Mismatch(path: path, what: "more than the \(narSize) bytes of its narSize")
            }
            guard !bytes.isEmpty else { return ([], before, before) }
            bytes.withUnsafeBytes {
                hash.update($0)
                contentAddress?.update($0)
            }
            let after = hash.narSize
            if after <= holdBack {
                held += bytes
                return ([], before, after)
            }
            defer { held = bytes }
            return (held, before, after)
        }
        try await send(ready)
        return (before, after)
    }

    /// Throws unless the bytes received are exactly the NAR; then forwards what was held back.
    func finish() async throws {
        let rest = try lock.withLock { () throws -> [UInt8] in
            guard !finished else { return [] }
            finished = true
            let (gotHash, gotSize) = hash.finalize()
            guard gotSize == narSize else { throw Mismatch(path: path, what: "narSize \(gotSize), expected \(narSize)") }
            guard gotHash == narHash else { throw Mismatch(path: path, what: "narHash \(gotHash), expected \(narHash)") }
            do { try contentAddress?.finish() } catch { throw Mismatch(path: path, what: "\(error)") }
            defer { held = [] }
            return held
        }
        try await send(rest)
    }

    private func send(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        lock.withLock { forwardedBytes += UInt64(bytes.count) }
        try await forward(bytes)
    }
}
