import Foundation
import NixTransport
import Testing

/// scripts/test runs the SSH transport tests twice: with the system's libssh2 1.10, and with
/// Debian 13's 1.11.1 through LD_LIBRARY_PATH (NIX_BRIDGE_EXPECT_LIBSSH2=1.11). This checks
/// that each run really has the library it claims.
@Suite struct LibSSH2VersionTests {
    @Test func theLoadedLibraryIsTheOneThisRunIsFor() {
        let expected = ProcessInfo.processInfo.environment["NIX_BRIDGE_EXPECT_LIBSSH2"] ?? "1.10"
        #expect(SSHLibrary.version.hasPrefix(expected + "."),
                "loaded libssh2 \(SSHLibrary.version), expected \(expected)")
    }
}
