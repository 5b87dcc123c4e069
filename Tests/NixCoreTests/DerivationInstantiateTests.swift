import Foundation
import NixCore
import Testing
import TestSupport

/// Derivations made by the real `nix-instantiate` into the real store: our render must equal
/// the file, our hash modulo must give Nix's output paths, our text path Nix's `.drv` path.
@Suite(.serialized, .tags(.realNix, .hostTools), .enabled(if: TestSupport.hasNix && TestSupport.has("nix-instantiate"),
                             "needs the nix CLI (nix-bin)"))
struct DerivationInstantiateTests {
    typealias H = DerivationTestHelpers
    let store = StoreDirectory.default

    /// Several derivations in one file; the `id` makes each test run's paths new ones.
    static func expression(id: String) -> String {
        #"""
        let
          sys = builtins.currentSystem;
          id = "\#(id)";
        in rec {
          dep = derivation {
            name = "dep"; builder = "/bin/sh"; system = sys; inherit id;
            args = [ "-c" "echo > $out; echo > $dev" ];
            outputs = [ "out" "dev" "doc" ];
          };
          fod = derivation {
            name = "fod"; builder = "/bin/sh"; system = sys;
            outputHashMode = "recursive"; outputHashAlgo = "sha256";
            outputHash = "1jvkd0yxmhmyz8i4aqc8ffzkk3wlr3r4dsdhh6a8gqj0y5pa1m0z";
          };
          flat = derivation {
            name = "flat"; builder = "/bin/sh"; system = sys; inherit id;
            outputHashAlgo = "sha1"; outputHash = "0000000000000000000000000000000000000000";
          };
          src = builtins.toFile "src-${id}.txt" "hello";
          top = derivation {
            name = "top"; builder = "/bin/sh"; system = sys; inherit dep fod flat src id;
            depdev = dep.dev;
            args = [ "-c" "x\"y\\z\n\t$out" ];
            requiredSystemFeatures = [ "kvm" "big-parallel" ];
            preferLocalBuild = true; allowSubstitutes = false;
            weird = "a\"b\\c\nd\re\tf é ☃";
          };
          structured = derivation {
            name = "structured"; builder = "/bin/sh"; system = sys; inherit id;
            __structuredAttrs = true;
            outputs = [ "out" "lib" ];
            requiredSystemFeatures = [ "kvm" "nixos-test" ];
            preferLocalBuild = true;
            nested = { a = [ 1 2.5 "é\n" null true ]; };
            top = top;
          };
          ca = derivation {
            name = "ca"; builder = "/bin/sh"; system = sys; inherit id;
            __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256";
          };
          caDown = derivation { name = "ca-down"; builder = "/bin/sh"; system = sys; inherit ca; };
          impure = derivation { name = "impure"; builder = "/bin/sh"; system = sys; inherit id; __impure = true; };
        }
        """#
    }

    struct Instantiated {
        var drvPath: StorePath
        var bytes: [UInt8]
        var drv: Derivation
    }

    /// Instantiates attribute `attr` and reads back the `.drv` file.
    func instantiate(_ file: URL, _ attr: String) throws -> Instantiated {
        let out = try TestSupport.run(["nix-instantiate", "--extra-experimental-features", "ca-derivations impure-derivations",
                                       file.path, "-A", attr])
        let drvPath = try store.parse(out.trimmed)
        let bytes = try H.bytes(URL(fileURLWithPath: out.trimmed))
        return Instantiated(drvPath: drvPath, bytes: bytes,
                            drv: try Derivation(parsing: bytes, name: Derivation.name(fromDrvPath: drvPath)))
    }

    func makeFile() throws -> URL {
        let dir = try TestSupport.temporaryDirectory("drv-inst")
        let file = dir.appendingPathComponent("default.nix")
        let id = String(UUID().uuidString.prefix(8)).lowercased()
        try DerivationInstantiateTests.expression(id: id).write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Our parse against Nix's own reading of the file (`nix show-derivation`).
    func checkShowDerivation(_ i: Instantiated) throws {
        let out = try TestSupport.nix(["--extra-experimental-features", "ca-derivations impure-derivations", "show-derivation",
                                       store.print(i.drvPath)])
        let all = try #require(try JSONSerialization.jsonObject(with: out.stdout) as? [String: Any])
        let j = try #require(all[store.print(i.drvPath)] as? [String: Any])
        #expect(j["system"] as? String == i.drv.system)
        #expect(j["builder"] as? String == i.drv.builder)
        #expect(j["args"] as? [String] == i.drv.args)
        #expect(j["env"] as? [String: String] == i.drv.env)
        #expect(Set(j["inputSrcs"] as? [String] ?? ["?"]) == Set(i.drv.inputSrcs.map(store.print)))
        let inputDrvs = try #require(j["inputDrvs"] as? [String: [String]])
        #expect(inputDrvs.mapValues(Set.init) == Dictionary(uniqueKeysWithValues: i.drv.inputDrvs.map {
            (store.print($0.key), $0.value.outputs)
        }))
        let outputs = try #require(j["outputs"] as? [String: [String: Any]])
        #expect(Set(outputs.keys) == Set(i.drv.outputNames))
        for (name, o) in i.drv.outputs {
            let f = try o.fields(drvName: i.drv.name, outputName: name, storeDirectory: store)
            let nix = outputs[name] ?? [:]
            // Nix 2.8 shows an impure output as `"impure": true` instead of the hash field.
            let hash = nix["impure"] as? Bool == true ? "impure" : nix["hash"] as? String ?? ""
            #expect(nix["path"] as? String ?? "" == f.path && nix["hashAlgo"] as? String ?? "" == f.hashAlgo && hash == f.hash,
                    "output \(name) of \(i.drvPath): nix says \(nix)")
        }
    }

    /// Render, `.drv` path, output paths (ours vs the file vs `nix-store -q --outputs`).
    func checkCommon(_ i: Instantiated) throws {
        try checkShowDerivation(i)
        #expect(Array(try i.drv.render(in: store).utf8) == i.bytes, "render differs from \(i.drvPath)")
        #expect(try i.drv.storePath(in: store) == i.drvPath)
        var hasher = H.storeHasher()
        let computed = try hasher.outputPaths(i.drv)
        let stated = try i.drv.outputsAndPaths(in: store)
        #expect(computed == stated)
        let known = computed.values.compactMap { $0 }
        if known.count == computed.count {
            let q = try TestSupport.run(["nix-store", "-q", "--outputs", store.print(i.drvPath)])
            let listed = Set(try q.trimmed.split(separator: "\n").map { try store.parse($0) })
            #expect(listed == Set(known))
        }
    }

    @Test func instantiatedDerivationsMatch() throws {
        let file = try makeFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }

        let dep = try instantiate(file, "dep")
        try checkCommon(dep)
        #expect(dep.drv.outputNames == ["dev", "doc", "out"])
        #expect(try dep.drv.type() == .inputAddressed(deferred: false))
        #expect(try dep.drv.requiredSystemFeatures() == [])

        let fod = try instantiate(file, "fod")
        try checkCommon(fod)
        #expect(try fod.drv.type() == .contentAddressed(fixed: true))
        guard case let .caFixed(method, hash)? = fod.drv.outputs["out"] else {
            Issue.record("fod output is not fixed: \(String(describing: fod.drv.outputs["out"]))")
            return
        }
        #expect(method == .nar && hash.string(.nix32, withAlgorithm: false) == "1jvkd0yxmhmyz8i4aqc8ffzkk3wlr3r4dsdhh6a8gqj0y5pa1m0z")
        // Hash modulo of a fixed output: sha256 of "fixed:out:r:sha256:<hex>:<path>".
        var hasher = H.storeHasher()
        let fodHash = try hasher.hashModulo(fod.drv, maskOutputs: false)
        let outPath = try #require(try fod.drv.outputsAndPaths(in: store)["out"] ?? nil)
        let expected = HashSink.hash(.sha256, string: "fixed:out:r:sha256:" + hash.string(.base16, withAlgorithm: false)
                                     + ":" + store.print(outPath))
        #expect(fodHash == DrvHash(hashes: ["out": expected], kind: .regular))

        let flat = try instantiate(file, "flat")
        try checkCommon(flat)
        #expect(flat.drv.outputs["out"].map { if case .caFixed(.flat, _) = $0 { true } else { false } } == true)

        let top = try instantiate(file, "top")
        try checkCommon(top)
        #expect(top.drv.inputDrvs[dep.drvPath] == ["dev", "out"])
        #expect(top.drv.inputDrvs[fod.drvPath] == ["out"])
        #expect(top.drv.inputSrcs.count == 1 && top.drv.inputSrcs.first?.name.hasPrefix("src-") == true)
        #expect(top.drv.args == ["-c", "x\"y\\z\n\t$out"])
        #expect(top.drv.env["weird"] == "a\"b\\c\nd\re\tf é ☃")
        #expect(try top.drv.requiredSystemFeatures() == ["kvm", "big-parallel"])
        #expect(try top.drv.preferLocalBuild())
        #expect(try !top.drv.allowSubstitutes())
        // The input closure view the build hook sends. `top` wants dep's out and dev and
        // fod's and flat's out; nix-store lists all outputs of each input derivation.
        let closure = try top.drv.inputOutputPaths(in: store) { try H.readStoreDerivation($0) }
        var listed = Set<StorePath>()
        for d in [dep, fod, flat] {
            let q = try TestSupport.run(["nix-store", "-q", "--outputs", store.print(d.drvPath)])
            for line in q.trimmed.split(separator: "\n") { listed.insert(try store.parse(line)) }
        }
        #expect(closure == listed.filter { !$0.name.hasSuffix("-doc") })
        #expect(closure.count == 4)
        let basic = BasicDerivation(top.drv, inputClosure: closure)
        #expect(basic.inputSrcs == closure.union(top.drv.inputSrcs))
        #expect(try basic.outputPaths(in: store) == (try top.drv.outputsAndPaths(in: store)))
        #expect(try basic.outputFields(in: store).map(\.name) == ["out"])

        let structured = try instantiate(file, "structured")
        try checkCommon(structured)
        #expect(structured.drv.env["requiredSystemFeatures"] == nil)
        #expect(try structured.drv.requiredSystemFeatures() == ["kvm", "nixos-test"])
        #expect(try structured.drv.preferLocalBuild())
        #expect(try structured.drv.allowSubstitutes())
        #expect(structured.drv.inputDrvs[top.drvPath] == ["out"])

        // Hash modulo reads each input derivation once (Nix's drvHashes cache).
        final class Reads: @unchecked Sendable { var paths: [StorePath] = [] }
        let reads = Reads()
        var counting = DerivationHasher { p in
            reads.paths.append(p)
            return try H.readStoreDerivation(p)
        }
        #expect(try counting.outputPaths(structured.drv) == (try structured.drv.outputsAndPaths(in: store)))
        #expect(try counting.outputPaths(top.drv) == (try top.drv.outputsAndPaths(in: store)))
        #expect(reads.paths.count == 4 && Set(reads.paths) == [top.drvPath, dep.drvPath, fod.drvPath, flat.drvPath])
    }

    @Test func floatingContentAddressedAndDeferred() throws {
        let file = try makeFile()
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }

        let ca = try instantiate(file, "ca")
        try checkCommon(ca)
        #expect(ca.drv.outputs["out"] == .caFloating(method: .nar, algorithm: .sha256))
        #expect(try ca.drv.requiredSystemFeatures() == ["ca-derivations"])
        var hasher = H.storeHasher()
        #expect(try hasher.hashModulo(ca.drv, maskOutputs: false).kind == .deferred)

        let down = try instantiate(file, "caDown")
        try checkCommon(down)
        #expect(down.drv.outputs["out"] == .deferred)
        #expect(try down.drv.type() == .inputAddressed(deferred: true))
        #expect(try hasher.hashModulo(down.drv, maskOutputs: true).kind == .deferred)
        #expect(try hasher.outputPaths(down.drv) == ["out": nil])
        let impure = try instantiate(file, "impure")
        try checkCommon(impure)
        #expect(impure.drv.outputs["out"] == .impure(method: .nar, algorithm: .sha256))
        #expect(try impure.drv.type() == .impure)
        #expect(try impure.drv.requiredSystemFeatures() == ["ca-derivations"])
        #expect(try hasher.hashModulo(impure.drv, maskOutputs: false)
                == DrvHash(hashes: ["out": HashSink.hash(.sha256, string: "impure")], kind: .deferred))
        #expect(try hasher.outputPaths(impure.drv) == ["out": nil])

        // Its input's output has no path until built, so no input closure either.
        #expect(throws: DerivationError.outputPathUnknown(drv: store.print(ca.drvPath), output: "out")) {
            try down.drv.inputOutputPaths(in: store) { try H.readStoreDerivation($0) }
        }
    }
}
