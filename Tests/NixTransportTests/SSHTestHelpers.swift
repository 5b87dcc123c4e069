import Foundation
import NixCore
import NixTransport
import TestSupport

/// A target for builder `n` of the fleet, as our code would build it from the ssh_config.
func fleetTarget(_ fleet: Fleet, _ n: Int = 1, key: String? = nil, pinned: String? = nil,
                 ioTimeout: Duration? = nil) -> SSHTarget {
    SSHTarget(host: "127.0.0.1", port: fleet.builders[n - 1].port, user: "root",
              identityFiles: [key ?? fleet.clientKey], identitiesOnly: true, pinnedHostKey: pinned,
              hostKeyAlias: fleet.builders[n - 1].name, knownHostsFiles: [fleet.knownHosts],
              strictHostKeyChecking: .yes, connectTimeout: .seconds(10), ioTimeout: ioTimeout,
              alias: fleet.builders[n - 1].name)
}

/// Runs `body` with a fresh fleet, stopping it afterwards whatever happens.
func withFleet<T>(_ count: Int = 1, _ body: (Fleet) async throws -> T) async throws -> T {
    let fleet = try Fleet(count: count)
    defer { fleet.stop() }
    return try await body(fleet)
}

/// Expects `body` to throw an SSHError and returns it.
func expectSSHError(_ body: () async throws -> Void) async -> SSHError? {
    do {
        try await body()
        return nil
    } catch let e as SSHError {
        return e
    } catch {
        return nil
    }
}

func u64le(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
func readU64(_ s: some ByteStream) async throws -> UInt64 {
    let b = try await s.read(exactly: 8)
    return b.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
}
func readString(_ s: some ByteStream) async throws -> String {
    let n = Int(try await readU64(s))
    guard n < 4096 else { throw StreamError.tooLong(limit: 4096) }
    let padded = (n + 7) / 8 * 8
    let b = try await s.read(exactly: padded)
    return String(decoding: b[..<n], as: UTF8.self)
}

/// The worker-protocol handshake of Nix 2.8 by hand (the real protocol lives in NixWire):
/// returns (server protocol version, daemon's Nix version).
func workerHandshake(_ s: some ByteStream) async throws -> (UInt64, String) {
    try await s.write(u64le(0x6e697863))
    let magic2 = try await readU64(s)
    guard magic2 == 0x6478696f else { throw StreamError.prematureEOF(expected: 0, got: Int(magic2)) }
    let version = try await readU64(s)
    try await s.write(u64le(0x122) + u64le(0) + u64le(0))
    let nixVersion = try await readString(s)
    let last = try await readU64(s)
    guard last == 0x616c7473 else { throw StreamError.prematureEOF(expected: 0, got: Int(last)) }
    return (version, nixVersion)
}

/// `nix --version` of the installed CLI, e.g. "2.8.0".
func installedNixVersion() throws -> String {
    String(try TestSupport.run(["nix", "--version"]).trimmed.split(separator: " ").last ?? "")
}
