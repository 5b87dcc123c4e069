import ArgumentParser
import Bridge
import Foundation
import NarInfoCache

/// `nix-bridge cache stats|clear`: the SQLite narinfo cache.
struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Inspect or clear the narinfo cache.",
        subcommands: [Stats.self, Clear.self]
    )

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count cached answers per store.")
        @Option(help: "The narinfo cache file.")
        var narinfoCache: String?
        @OptionGroup var nix: NixOptions

        func run() throws {
            let cache = try nix.load().narInfoCache(path: narinfoCache)
            let s = try cache.stats()
            print("Cache file: \(cache.path) (\(s.fileSize / 1024) KiB)")
            for st in s.stores {
                print("\(st.storeURI): \(st.positive) positive, \(st.negative) negative, \(st.expired) expired")
            }
            if s.stores.isEmpty { print("(no stores cached)") }
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget cached answers.")
        @Flag(help: "Forget only negative answers (paths a store did not have).")
        var negative = false
        @Option(help: "The narinfo cache file.")
        var narinfoCache: String?
        @OptionGroup var nix: NixOptions

        func run() throws {
            let cache = try nix.load().narInfoCache(path: narinfoCache)
            try cache.clear(negativeOnly: negative)
            print(negative ? "cleared negative answers" : "cleared all answers")
        }
    }
}
