import Foundation
import NixCore
import NixSigning
import TestSupport
import Testing

/// The fleet served as an HTTP binary cache, checked with the real Nix 2.8 client (`nix
/// path-info`, `nix copy`, `nix-store -r`, `nix build` against `http://127.0.0.1:PORT`),
/// with curl for what Nix does not show (status codes, HEAD, a cut NAR).
@Suite("HTTP binary cache", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.hostTools), .enabled(if: TestSupport.has("curl"), "needs curl"))
struct ServeHTTPTests {
    /// A started fleet for one test, stopped afterwards whatever happens.
    func withFleet(_ label: String, narInfoTTL: Duration = .seconds(60),
                   _ body: (HTTPScenario) async throws -> Void) async throws {
        let f = try await HTTPScenario.offPool { try HTTPScenario(label: label, narInfoTTL: narInfoTTL) }
        do {
            try await f.start()
            try await body(f)
        } catch {
            await f.stop()
            throw error
        }
        await f.stop()
    }

    /// What builder n's store says of `paths` (real `nix path-info --json --sigs`).
    func builderInfos(_ f: HTTPScenario, _ n: Int, _ paths: [StorePath]) async throws -> [StorePath: PathInfo] {
        let out = try await f.nix(["path-info", "--json", "--sigs", "--store", "local?root=\(f.fleet.builders[n - 1].storeRoot)"]
                                  + paths.map(f.printed))
        return Dictionary(uniqueKeysWithValues: try PathInfoJSON.parse(out.stdout).map { ($0.path, $0) })
    }

    @Test func cacheInfoMirrorsNixServe() async throws {
        try await withFleet("info") { f in
            let r = try await f.curl("nix-cache-info")
            #expect(r.status == 200)
            #expect(String(decoding: r.body, as: UTF8.self) == "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n")
            #expect(r.headers.lowercased().contains("content-type: text/x-nix-cache-info"))
        }
    }

    @Test func narInfoMatchesTheBuilderPlusOurSignature() async throws {
        try await withFleet("narinfo") { f in
            let paths = f.shared.paths + f.only2.paths
            let b2 = try await builderInfos(f, 2, paths)
            let b1 = try await builderInfos(f, 1, f.shared.paths)
            let ours = try KeyFiles.readSecretKey(f.ours.secretKeyFile.path)
            for path in paths {
                let r = try await f.curl(path.hashPart + ".narinfo")
                #expect(r.status == 200, "\(f.printed(path))")
                let text = String(decoding: r.body, as: UTF8.self)
                let served = try NarInfo(parsing: text, whence: "served")
                let expected = try #require(b2[path])
                #expect(served.pathInfo.path == path)
                #expect(served.pathInfo.narHash == expected.narHash)
                #expect(served.pathInfo.narSize == expected.narSize)
                #expect(served.pathInfo.references == expected.references)
                #expect(served.pathInfo.deriver == expected.deriver)
                #expect(served.compression == "none")
                #expect(served.url == "nar/\(expected.narHash.string(.nix32, withAlgorithm: false)).nar?hash=\(path.hashPart)")
                // The builder's signature (from the builder the fleet prefers: either) plus ours.
                let builderSigs = expected.sigs.union(b1[path]?.sigs ?? [])
                #expect(!served.pathInfo.sigs.intersection(builderSigs).isEmpty, "\(text)")
                #expect(served.pathInfo.sigs.contains(try ours.sign(expected).description), "\(text)")
                // Printed as Nix prints it.
                #expect(served.render() == text)
            }
        }
    }

    @Test func nixPathInfoAndCopyFromTheCache() async throws {
        try await withFleet("copy") { f in
            let root = try #require(f.shared.roots.first)
            let info = try await f.nix(["path-info", "--json", "--sigs", "--recursive", "--store", f.url, f.printed(root)])
            let served = try PathInfoJSON.parse(info.stdout)
            #expect(Set(served.map(\.path)) == Set(f.shared.paths), "the whole closure, through narinfo References")
            let b1 = try await builderInfos(f, 1, f.shared.paths)
            for s in served {
                #expect(s.narHash == b1[s.path]?.narHash)
                #expect(s.sigs.contains { $0.hasPrefix("bridge-1:") })
            }

            // Trusting only nix-bridge's key: our signature is what lets the copy in.
            let dest = try f.scratchStore("dest-copy")
            let copy = try await f.nix(["copy", "--from", f.url, "--to", "local?root=\(dest)",
                                        "--option", "trusted-public-keys", f.ours.publicKey, f.printed(root)], check: false)
            #expect(copy.status == 0, "\(copy.stderr)")
            let verify = try await f.run(["nix-store", "--store", "local?root=\(dest)", "--verify", "--check-contents"],
                                         check: false)
            #expect(verify.status == 0, "\(verify.stderr)")
            let copied = try await f.nix(["path-info", "--json", "--sigs", "--all", "--store", "local?root=\(dest)"])
            #expect(Set(try PathInfoJSON.parse(copied.stdout).map(\.path)) == Set(f.shared.paths))
        }
    }

    @Test func substitutersFetchPathsHeldOnlyByABuilder() async throws {
        try await withFleet("subst") { f in
            let root = try #require(f.only2.roots.first)
            let dest = try f.scratchStore("dest-subst")
            let options = ["--option", "substituters", f.url, "--option", "trusted-public-keys", f.builderKeys]
            let realise = try await f.run(["nix-store", "--store", "local?root=\(dest)", "-r", f.printed(root)] + options,
                                          check: false)
            #expect(realise.status == 0, "\(realise.stderr)")
            #expect(realise.trimmed == f.printed(root))

            // `nix build` of the 8 MiB path (one streamed NAR, checked by Nix on arrival).
            let large = try #require(f.large.paths.first)
            let build = try await f.run(["nix", "--extra-experimental-features", "nix-command", "build", "--no-link",
                                         "--store", "local?root=\(dest)", f.printed(large)] + options, check: false)
            #expect(build.status == 0, "\(build.stderr)")
            let verify = try await f.run(["nix-store", "--store", "local?root=\(dest)", "--verify", "--check-contents"],
                                         check: false)
            #expect(verify.status == 0, "\(verify.stderr)")
            let got = try await f.nix(["path-info", "--json", "--all", "--store", "local?root=\(dest)"])
            #expect(Set(try PathInfoJSON.parse(got.stdout).map(\.path)) == Set(f.only2.paths + [large]))
        }
    }

    @Test func untrustedAndUnknownPathsAre404AndNotFetched() async throws {
        try await withFleet("untrusted") { f in
            let refused = f.unsigned.paths + f.strangers.paths
            let b1 = try await builderInfos(f, 1, refused)
            for path in refused {
                #expect(try await f.curl(path.hashPart + ".narinfo").status == 404)
                let info = try #require(b1[path])
                // Even knowing the NAR's URL does not get it.
                let nar = "nar/\(info.narHash.string(.nix32, withAlgorithm: false)).nar?hash=\(path.hashPart)"
                #expect(try await f.curl(nar).status == 404)
            }
            #expect(try await f.curl("00000000000000000000000000000000.narinfo").status == 404)
            #expect(try await f.curl("not-a-hash.narinfo").status == 404)
            #expect(try await f.curl("nar/bogus.nar").status == 404)

            let dest = try f.scratchStore("dest-untrusted")
            for path in [f.unsigned.paths[0], f.strangers.paths[0]] {
                let r = try await f.run(["nix-store", "--store", "local?root=\(dest)", "-r", f.printed(path),
                                         "--option", "substituters", f.url,
                                         "--option", "trusted-public-keys", f.builderKeys], check: false)
                #expect(r.status != 0, "\(f.printed(path)) must not be fetched")
            }
            let got = try await f.nix(["path-info", "--json", "--all", "--store", "local?root=\(dest)"])
            #expect(try PathInfoJSON.parse(got.stdout).isEmpty)
        }
    }

    @Test func headAndNarURLs() async throws {
        try await withFleet("head") { f in
            let path = try #require(f.only2.paths.first)
            let get = try await f.curl(path.hashPart + ".narinfo")
            let head = try await f.curl(path.hashPart + ".narinfo", head: true)
            #expect(head.status == 200)
            #expect(head.headers.lowercased().contains("content-length: \(get.body.count)\r\n"), "\(head.headers)")
            #expect(head.headers.lowercased().contains("content-type: text/x-nix-narinfo"))
            #expect(try await f.curl("00000000000000000000000000000000.narinfo", head: true).status == 404)

            let info = try NarInfo(parsing: String(decoding: get.body, as: UTF8.self), whence: "served")
            let narHash = info.pathInfo.narHash.string(.nix32, withAlgorithm: false)
            let nar = try await f.curl(info.url)
            #expect(nar.status == 200)
            #expect(UInt64(nar.body.count) == info.pathInfo.narSize)
            #expect(HashSink.hash(.sha256, [UInt8](nar.body)) == info.pathInfo.narHash)
            #expect(nar.headers.lowercased().contains("content-length: \(info.pathInfo.narSize)\r\n"))
            // nix-serve's form names the same NAR.
            let nixServe = try await f.curl("nar/\(path.hashPart)-\(narHash).nar")
            #expect(nixServe.status == 200 && nixServe.body == nar.body)
            let narHead = try await f.curl(info.url, head: true)
            #expect(narHead.status == 200)
            #expect(narHead.headers.lowercased().contains("content-length: \(info.pathInfo.narSize)\r\n"))
            // Read-only: an upload is refused.
            let put = try await f.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                                       "--data-binary", "x", "\(f.url)/\(path.hashPart).narinfo"])
            #expect(put.text == "405")
            // A NAR hash that is not the path's: 404.
            let other = String(narHash.reversed())
            #expect(try await f.curl("nar/\(other).nar?hash=\(path.hashPart)").status == 404)
        }
    }

    @Test func aCorruptNARIsCutShort() async throws {
        try await withFleet("corrupt") { f in
            let large = try #require(f.large.paths.first)
            let meta = try await f.curl(large.hashPart + ".narinfo")
            let info = try NarInfo(parsing: String(decoding: meta.body, as: UTF8.self), whence: "served")
            // Change one byte of the file on the builder (its registered hash stays).
            let file = f.fleet.builders[1].storeRoot + f.printed(large)
            let handle = try #require(FileHandle(forUpdatingAtPath: file))
            try handle.seek(toOffset: 4 << 20)
            let byte = try #require(try handle.read(upToCount: 1)).first ?? 0
            try handle.seek(toOffset: 4 << 20)
            try handle.write(contentsOf: [byte ^ 0xff])
            try handle.close()

            let out = try await f.run(["curl", "-sS", "-o", f.work.appendingPathComponent("cut.nar").path,
                                       "-w", "%{http_code} %{size_download}", "\(f.url)/\(info.url)"], check: false)
            #expect(out.status != 0, "curl must see the transfer cut: \(out.text)")
            let fields = out.text.split(separator: " ")
            #expect(fields.first == "200")
            let got = UInt64(fields.last ?? "") ?? .max
            #expect(got < info.pathInfo.narSize, "received \(got) of \(info.pathInfo.narSize)")

            let dest = try f.scratchStore("dest-corrupt")
            let r = try await f.run(["nix-store", "--store", "local?root=\(dest)", "-r", f.printed(large),
                                     "--option", "substituters", f.url,
                                     "--option", "trusted-public-keys", f.builderKeys], check: false)
            #expect(r.status != 0, "a corrupt NAR must not be registered")
        }
    }

    @Test func fiftyConcurrentClientsGetCorrectNarInfos() async throws {
        // No in-memory narinfo cache: every request goes to the fleet.
        try await withFleet("concurrent", narInfoTTL: .zero) { f in
            let paths = f.shared.paths + f.only2.paths + f.large.paths
            let infos = try await builderInfos(f, 2, paths)
            // One curl, 50 transfers at once: 50 connections open together.
            var args = ["curl", "-sS", "--parallel", "--parallel-immediate", "--parallel-max", "50",
                        "-w", "%{http_code} %{url_effective}\\n"]
            let dir = f.work.appendingPathComponent("concurrent")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<50 {
                args += ["-o", dir.appendingPathComponent("\(i)").path, "\(f.url)/\(paths[i % paths.count].hashPart).narinfo"]
            }
            let started = ContinuousClock.now
            let out = try await f.run(args)
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .seconds(30), "50 narinfo requests took \(elapsed)")
            let statuses = out.text.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
            #expect(statuses == Array(repeating: "200", count: 50), "\(out.text)")
            let results = try (0..<50).map { i in
                (paths[i % paths.count], 200, try Data(contentsOf: dir.appendingPathComponent("\(i)")))
            }
            #expect(results.count == 50)
            var bodies: [StorePath: Set<Data>] = [:]
            for (path, status, body) in results {
                #expect(status == 200, "\(f.printed(path))")
                let served = try NarInfo(parsing: String(decoding: body, as: UTF8.self), whence: "served")
                #expect(served.pathInfo.path == path)
                #expect(served.pathInfo.narHash == infos[path]?.narHash)
                #expect(served.pathInfo.references == infos[path]?.references)
                bodies[path, default: []].insert(body)
            }
            #expect(bodies.count == paths.count)
            for (path, set) in bodies where !f.shared.paths.contains(path) {
                // Paths on one builder only: one answer, byte for byte.
                #expect(set.count == 1, "\(f.printed(path))")
            }
        }
    }
}
