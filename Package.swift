// swift-tools-version:6.0
import PackageDescription

// Layers: each target depends only on the ones below it. The table of what each target may
// import is in Docs/Architecture.md; `scripts/check-layers` checks this file and every import
// against it. C libraries are reached only through the C* system-library targets.
let package = Package(
    name: "nix-bridge",
    products: [
        .executable(name: "nix-bridge", targets: ["nix-bridge"]),
        .executable(name: "nix-bridge-bench", targets: ["nix-bridge-bench"]),
        .library(name: "NixCore", targets: ["NixCore"]),
        .library(name: "NixSigning", targets: ["NixSigning"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries (pkg-config names checked: a wrong name only warns).
        .systemLibrary(name: "CSodium", path: "Sources/CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CSSH2", path: "Sources/CSSH2", pkgConfig: "libssh2",
                       providers: [.apt(["libssh2-1-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),

        // Pure values and formats. CCrypto only for SHA-256 (see Docs/Hashing.md).
        .target(name: "NixCore", dependencies: ["CCrypto"]),
        // The worker protocol over byte buffers; no sockets.
        .target(name: "NixWire", dependencies: ["NixCore"]),
        .target(name: "NixSigning", dependencies: ["NixCore", "CSodium"]),
        .target(name: "NarInfoCache", dependencies: ["NixCore", "CSQLite"]),
        .target(name: "NixTransport", dependencies: [
            "NixCore", "CSSH2", .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "NixStore", dependencies: [
            "NixCore", "NixWire", "NixTransport", .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Bridge", dependencies: [
            "NixCore", "NixWire", "NixSigning", "NarInfoCache", "NixTransport", "NixStore",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The HTTP binary cache (`serve --http`); its own target so the rest builds without hummingbird.
        .target(name: "BridgeHTTP", dependencies: [
            "Bridge", "NixCore", "NixSigning",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .executableTarget(name: "nix-bridge", dependencies: [
            "Bridge", "BridgeHTTP", "NixCore", "NixWire", "NixSigning", "NarInfoCache", "NixTransport", "NixStore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Benchmarks: numbers beside real Nix's, measured in the same run.
        .executableTarget(name: "nix-bridge-bench", dependencies: [
            "Bridge", "BridgeHTTP", "NixCore", "NixSigning", "NixStore", "NixTransport", "NixWire", "NarInfoCache", "CSodium", "CCrypto", "PeerFixtures",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Real peers on loopback (nix CLI, sshd fleets, fixture stores), for tests and benchmarks.
        .target(name: "PeerFixtures", dependencies: ["NixCore"]),
        // What only the tests share: vectors location, parsing and scheduling fixtures.
        .target(name: "TestSupport", dependencies: ["NixCore", "PeerFixtures"], path: "Tests/TestSupport"),
        .testTarget(name: "NixCoreTests", dependencies: ["NixCore", "TestSupport"]),
        .testTarget(name: "NixSigningTests", dependencies: ["NixSigning", "NixCore", "TestSupport"]),
        .testTarget(name: "NixWireTests", dependencies: ["NixWire", "NixCore", "TestSupport"]),
        .testTarget(name: "NixTransportTests", dependencies: ["NixTransport", "NixCore", "TestSupport"]),
        .testTarget(name: "NarInfoCacheTests", dependencies: ["NarInfoCache", "NixCore", "TestSupport"]),
        .testTarget(name: "NixStoreTests", dependencies: ["NixStore", "NixWire", "NixTransport", "NixCore", "TestSupport"]),
        .testTarget(name: "BridgeTests", dependencies: [
            "Bridge", "NixStore", "NixWire", "NixSigning", "NarInfoCache", "NixTransport", "NixCore", "TestSupport",
        ]),
        .testTarget(name: "BridgeHTTPTests", dependencies: [
            "BridgeHTTP", "Bridge", "NixStore", "NixSigning", "NixTransport", "NixCore", "TestSupport",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "CLITests", dependencies: ["NixCore", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
