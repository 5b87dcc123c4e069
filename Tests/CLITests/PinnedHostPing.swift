import Foundation
import TestSupport
import Testing

/// Builder 1 as ssh_config host `pinned`, with no known_hosts of its own (HOME is the
/// fleet's directory): only a machines file's pinned key lets ssh log in. `ping` through the
/// openssh transport with the right key or a stranger's.
struct PinnedHostPing {
    let environment: [String: String]
    let binary: String
    let right: String
    let wrong: String

    init(_ env: Fleet) throws {
        let b = env.builder(1)
        let config = try env.write("ssh_config_pinned", """
            Host pinned
              HostName 127.0.0.1
              Port \(b.port)
              User root
              IdentityFile \(env.clientKey)
              IdentitiesOnly yes
              StrictHostKeyChecking yes
              BatchMode yes
              LogLevel ERROR

            """)
        environment = env.environment.merging(["NIX_SSHOPTS": "-F \(config)", "HOME": env.directory.path]) { $1 }
        binary = try #require(CLI.binary)
        let wrongLine = try String(contentsOfFile: env.strangerKey + ".pub", encoding: .utf8)
            .split(separator: " ").prefix(2).joined(separator: " ")
        wrong = Data(wrongLine.utf8).base64EncodedString()
        right = b.hostKeyBase64
    }

    func ping(_ key: String) throws -> TestSupport.Output {
        try TestSupport.run([binary, "ping", "--option", "ssh-transport", "openssh", "--builders",
                             "ssh-ng://pinned x86_64-linux - 1 1 - - \(key)"], environment: environment, check: false)
    }

    static func isMismatch(_ o: TestSupport.Output) -> Bool {
        o.status != 0 && (o.stderr.contains("Host key verification failed") || o.stderr.contains("REMOTE HOST IDENTIFICATION"))
    }
}
