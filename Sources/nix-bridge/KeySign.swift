import ArgumentParser
import NixCore
import NixSigning

/// `nix-bridge key sign`: adds this key's signature to narinfo files in place.
struct KeySign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Add a 'Sig:' line to narinfo files.",
        discussion: """
            Every file is read and checked first; nothing is written if one is corrupt. Each \
            file is then replaced atomically. A signature already present is not added again.
            """
    )

    @Option(name: [.customLong("key-file"), .customShort("k")], help: "File containing the secret signing key.")
    var keyFile: String
    @Option(help: "The store directory the narinfo paths are in.")
    var storeDir: String = StoreDirectory.default.path
    @Argument(help: "narinfo files to sign.")
    var narinfos: [String]

    func run() throws {
        try reportingErrors {
            let key = try KeyFiles.readSecretKey(keyFile)
            let dir = StoreDirectory(storeDir)
            var updates: [(file: String, text: String)] = []
            for file in narinfos {
                let text = try Files.read(file, limit: NarInfo.maxSize)
                let info = try NarInfo(parsing: text, whence: file, storeDir: dir)
                let sig: String
                do {
                    sig = try key.sign(info.pathInfo, storeDir: dir).description
                } catch {
                    throw CLIError.narInfo(file: file, error)
                }
                if info.pathInfo.sigs.contains(sig) { continue }
                if let signed = NarInfo.addingSignature(sig, to: text) { updates.append((file, signed)) }
            }
            for u in updates { try Files.replace(u.file, with: u.text) }
            printError("added \(updates.count) signatures")
        }
    }
}
