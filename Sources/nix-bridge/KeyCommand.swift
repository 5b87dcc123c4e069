import ArgumentParser
import NixSigning

/// `nix-bridge key ...`: binary-cache signing keys, in Nix's formats.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Generate binary-cache signing keys and sign or verify narinfo files.",
        subcommands: [Generate.self, Public.self, KeySign.self, KeyVerify.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a key pair, as 'nix-store --generate-binary-cache-key' does.",
            discussion: """
                Writes 'NAME:base64' files with no trailing newline: the public key with the \
                default mode, the secret key readable only by its owner (0600). Existing \
                files are replaced.
                """
        )

        @Argument(help: "The key's name, e.g. 'cache.example.org-1' (no ':' or whitespace).")
        var name: String
        @Argument(help: "Where to write the secret key.")
        var secretFile: String
        @Argument(help: "Where to write the public key.")
        var publicFile: String

        func run() throws {
            let key = try SecretKey.generate(name: name)
            try KeyFiles.write(key, secretFile: secretFile, publicFile: publicFile)
        }
    }

    struct Public: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public key of a secret key file."
        )

        @Argument(help: "A secret key file ('nix-store --generate-binary-cache-key' format).")
        var secretFile: String

        func run() throws {
            print(try KeyFiles.readSecretKey(secretFile).publicKey)
        }
    }
}
