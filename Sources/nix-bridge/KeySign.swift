import ArgumentParser
import Bridge
import NixCore
import NixSigning
import NixStore

/// `nix-bridge key sign`: adds this key's signature to narinfo files in place, or (with
/// `--store`) to paths in a store, like `nix store sign`.
struct KeySign: AsyncParsableCommand, PathListCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign narinfo files, or (with --store) paths in a store like 'nix store sign'.",
        discussion: """
            Without --store, the arguments are narinfo files: every file is read and checked \
            first; nothing is written if one is corrupt. Each file is then replaced atomically. \
            With --store, the arguments are store paths, signed in that store through its \
            daemon (AddSignatures: the remote user must be trusted). A signature already \
            present is never added again.
            """
    )

    @Option(name: [.customLong("key-file"), .customShort("k")], help: "File containing the secret signing key.")
    var keyFile: String
    @Option(help: "The store directory the narinfo paths are in.")
    var storeDir: String = StoreDirectory.default.path
    @Option(name: .customLong("store"), help: "Sign store paths in this store (ssh-ng://host, unix://PATH, daemon, local?root=DIR).")
    var store: String?
    @Flag(help: "With --store: sign every valid path of the store.")
    var all = false
    @Flag(name: [.customShort("r"), .customLong("recursive")], help: "With --store: sign the closures of the paths.")
    var recursive = false
    @Argument(help: "narinfo files to sign; with --store, store paths.")
    var arguments: [String] = []
    @Flag(help: "Also read narinfo files (with --store, store paths) from standard input, one per line (as Nix's --stdin).")
    var stdin = false
    @OptionGroup var nix: NixOptions

    func validate() throws {
        if store == nil, all || recursive {
            throw ValidationError("'--all' and '--recursive' need '--store' (narinfo files are signed one by one)")
        }
        if all, !arguments.isEmpty || stdin { throw ValidationError("'--all' does not take store paths") }
        if !all, arguments.isEmpty, !stdin { throw ValidationError(store == nil ? "no narinfo files given" : "no store paths given (or use '--all')") }
    }

    var pathArguments: [String] { get { arguments } set { arguments = newValue } }
    var readsStandardInput: Bool { stdin }
    var allowsNoPaths: Bool { all }
    static let pathArgumentName = "<arguments> ..."

    func run() async throws {
        if let store {
            try await signInStore(store)
            return
        }
        try signNarInfos()
    }

    /// `nix store sign --store URI`: the work is in Bridge's `StoreSigner`.
    private func signInStore(_ uriText: String) async throws {
        let key = try KeyFiles.readSecretKey(keyFile)
        let store = try nix.load().opener.store(try StoreURI(parsing: uriText))
        let selection: StoreSigner.Selection
        if all {
            selection = .all
        } else {
            var paths: [StorePath] = []
            for p in arguments {
                do { paths.append(try store.storeDir.storePath(containing: p)) } catch {
                    await store.close()
                    throw error
                }
            }
            selection = .paths(paths, recursive: recursive)
        }
        do {
            let added = try await StoreSigner.sign(selection, in: store, with: key)
            await store.close()
            printError("added \(added) signatures")
        } catch {
            await store.close()
            throw error
        }
    }

    private func signNarInfos() throws {
        let narinfos = arguments
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
