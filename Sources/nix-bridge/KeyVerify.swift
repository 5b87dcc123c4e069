import ArgumentParser
import NixCore
import NixSigning

/// `nix-bridge key verify`: Nix's trust decision for narinfo files.
struct KeyVerify: ParsableCommand, PathListCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check narinfo files' signatures against trusted public keys.",
        discussion: """
            Exits 0 only when every file is trusted: its path is correctly content-addressed, \
            or at least --sigs-needed distinct keys from --trusted-public-keys signed it. \
            Prints, per file, which keys verified or why not.
            """
    )

    @Option(help: "Whitespace-separated public keys ('name:base64'), as the nix.conf setting.")
    var trustedPublicKeys: String
    @Option(help: "How many distinct trusted signatures a path needs (at least 1).")
    var sigsNeeded: Int = 1
    @Option(help: "The store directory the narinfo paths are in.")
    var storeDir: String = StoreDirectory.default.path
    @Argument(help: "narinfo files to verify.")
    var narinfos: [String]

    var pathArguments: [String] { get { narinfos } set { narinfos = newValue } }
    static let pathArgumentName = "<narinfos> ..."

    func validate() throws {
        guard sigsNeeded >= 0 else { throw ValidationError("--sigs-needed must not be negative") }
    }

    func run() throws {
        let trusted = try TrustedKeys(parsing: trustedPublicKeys)
        let dir = StoreDirectory(storeDir)
        var failed = 0
        for file in narinfos {
            do {
                let text = try Files.read(file, limit: NarInfo.maxSize)
                let info = try NarInfo(parsing: text, whence: file, storeDir: dir)
                let verdict = trusted.verify(info.pathInfo, sigsNeeded: sigsNeeded, storeDir: dir)
                if verdict.isTrusted {
                    print("\(file): \(verdict)")
                } else {
                    failed += 1
                    printError("error: \(file): \(verdict)")
                }
            } catch {
                failed += 1
                printError("error: \(error)")
            }
        }
        if failed > 0 { throw CLIError.untrusted(failed: failed, total: narinfos.count) }
    }
}
