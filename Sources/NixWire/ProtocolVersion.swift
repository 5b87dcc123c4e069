/// A negotiated worker-protocol version: 1.minor plus, from 1.38, a set of named features.
public struct WorkerProtocolVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var minor: Int
    /// Features both sides agreed on (exchanged from 1.38).
    public var features: Set<String>

    /// The oldest version we speak (framed AddToStoreNar needs 1.23; 1.21 tunnels it).
    public static let minimum = WorkerProtocolVersion(minor: 21)
    /// The newest version we speak.
    public static let latest = WorkerProtocolVersion(minor: 38)
    /// Nix 2.8's version.
    public static let nix28 = WorkerProtocolVersion(minor: 34)

    /// Build results carry output paths instead of derivation-hash keyed JSON realisations.
    public static let featureRealisationWithPath = "realisation-with-path-not-hash"

    public init(minor: Int, features: Set<String> = []) {
        self.minor = minor
        self.features = features
    }

    /// From the wire form `major << 8 | minor`; nil when the major is not 1.
    public init?(wire: UInt64) {
        guard wire >> 8 == 1 else { return nil }
        self.init(minor: Int(wire & 0xff))
    }

    public var wire: UInt64 { 1 << 8 | UInt64(minor) }

    public func atLeast(_ minor: Int) -> Bool { self.minor >= minor }

    public func has(_ feature: String) -> Bool { features.contains(feature) }

    public var description: String {
        features.isEmpty ? "1.\(minor)" : "1.\(minor) [\(features.sorted().joined(separator: ", "))]"
    }

    /// Orders by number only (features do not order versions; equality includes them).
    public static func < (a: Self, b: Self) -> Bool { a.minor < b.minor }
}

/// Everything a value's encoding depends on: the protocol version and the store directory
/// (store paths travel as full paths).
public struct WireContext: Sendable, Hashable {
    public var version: WorkerProtocolVersion
    public var storeDir: StoreDirectory
    public var limits: WireLimits

    public init(version: WorkerProtocolVersion, storeDir: StoreDirectory = .default, limits: WireLimits = .default) {
        self.version = version
        self.storeDir = storeDir
        self.limits = limits
    }
}

import NixCore
