import Foundation
import NixCore
import Testing
import TestSupport

/// Upstream Nix's derivation golden files (libstore-tests/data/derivation), paired as
/// upstream's src/libstore-tests/derivation/*.cc pairs them.
@Suite(.tags(.upstreamVectors), .enabled(if: TestSupport.vectorSuitesRun, "needs the upstream vectors folder"))
struct DerivationVectorTests {
    var dir: URL { get throws { try TestSupport.requireVectors("libstore-tests/data/derivation") } }
    typealias H = DerivationTestHelpers

    /// Parses `file`, checks the render is byte-identical, and returns the derivation.
    func roundTrip(_ file: String, name: String) throws -> Derivation {
        let bytes = try H.bytes(dir.appendingPathComponent(file))
        let drv = try Derivation(parsing: bytes, name: name)
        let rendered = try drv.render(in: .default)
        #expect(Array(rendered.utf8) == bytes, "\(file) does not round-trip")
        return drv
    }

    @Test func simpleDerivationMatchesJSON() throws {
        let drv = try roundTrip("simple-derivation.drv", name: "simple-derivation")
        let expected = try H.derivation(H.readJSON(dir.appendingPathComponent("simple-derivation.json")))
        #expect(drv == expected)
        #expect(drv.outputs.isEmpty)
        #expect(drv.inputDrvs == [try StorePath(baseName: "c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-dep2.drv"): ["cat", "dog"]])
        #expect(drv.system == "wasm-sel4" && drv.builder == "foo" && drv.args == ["bar", "baz"])
        // No outputs: Nix refuses to classify it.
        #expect(throws: DerivationError.invalidType("must have at least one output")) { try drv.type() }
    }

    /// `file` with its input derivations put in path order. hello.drv and firefox.drv had
    /// their hashes replaced by `aaaa…` upstream, which left the entries in the order of the
    /// original hashes; Nix (a `std::map` keyed by store path) prints them sorted.
    func canonicalInputOrder(_ text: String) throws -> String {
        let outputsEnd = try #require(text.range(of: "],[("))
        let inputsEnd = try #require(text.range(of: ")],[", range: outputsEnd.upperBound..<text.endIndex))
        let entries = text[outputsEnd.upperBound..<inputsEnd.lowerBound].components(separatedBy: "),(")
        return String(text[..<outputsEnd.upperBound]) + entries.sorted().joined(separator: "),(")
            + String(text[inputsEnd.lowerBound...])
    }

    @Test(arguments: ["hello.drv", "firefox.drv"])
    func realWorldDerivationsRoundTrip(file: String) throws {
        let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
        let drv = try Derivation(parsing: text, name: String(file.dropLast(4)))
        let rendered = try drv.render(in: .default)
        #expect(rendered != text, "upstream fixed the order; compare bytes directly")
        #expect(rendered == (try canonicalInputOrder(text)))
        #expect(try Derivation(parsing: rendered, name: drv.name) == drv)
        #expect(drv.outputNames == ["out"])
        #expect(try drv.preferLocalBuild() == (file == "firefox.drv"))
        #expect(drv.system == "x86_64-linux")
        #expect(try drv.type() == .inputAddressed(deferred: false))
        #expect(try drv.requiredSystemFeatures() == [])
        #expect(try drv.allowSubstitutes())
        // The store path of a derivation is computable from its text alone.
        #expect(try drv.storePath(in: .default).name == drv.name + ".drv")
    }

    @Test func firefoxUsesStructuredAttrs() throws {
        let drv = try Derivation(parsing: H.bytes(dir.appendingPathComponent("firefox.drv")), name: "firefox-140.0.4")
        let json = try #require(drv.env["__json"])
        #expect(json.hasPrefix("{\"NIX_MAIN_PROGRAM\":\"firefox\""))
        // Attributes come from the __json object (a JSON Boolean here), not from env.
        #expect(drv.env["preferLocalBuild"] == nil)
        #expect(try drv.preferLocalBuild())
        #expect(throws: DerivationError.attributeType(name: "NIX_MAIN_PROGRAM", expected: "a list of strings")) {
            try drv.stringsAttribute("NIX_MAIN_PROGRAM")
        }
        #expect(throws: DerivationError.attributeType(name: "NIX_MAIN_PROGRAM", expected: "a Boolean")) {
            try drv.boolAttribute("NIX_MAIN_PROGRAM", default: false)
        }
    }

    @Test func dynamicDerivationRoundTrips() throws {
        let drv = try roundTrip("dyn-dep-derivation.drv", name: "dyn-dep-derivation")
        let dep2 = try StorePath(baseName: "c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-dep2.drv")
        #expect(drv.hasDynamicInputs)
        #expect(drv.inputDrvs[dep2] == InputDrvOutputs(["cat", "dog"],
                                                      dynamicOutputs: ["cat": ["kitten"], "goose": ["gosling"]]))
        // Hash modulo of dynamic inputs is not defined before resolution.
        var hasher = DerivationHasher { _ in drv }
        #expect(throws: DerivationError.self) { try hasher.hashModulo(drv, maskOutputs: false) }
    }

    func parseError(_ file: String, name: String) throws -> DerivationParseError {
        let bytes = try H.bytes(dir.appendingPathComponent(file))
        do {
            _ = try Derivation(parsing: bytes, name: name)
        } catch {
            return error
        }
        Issue.record("\(file) parsed but must fail")
        throw H.BadJSON(message: "no error")
    }

    @Test func badVersionIsRejected() throws {
        let e = try parseError("bad-version.drv", name: "bad-version")
        #expect(e.reason == .unknownVersion("invalid-version"))
        #expect(e.offset == 15 && e.line == 1 && e.column == 16)
        #expect(e.description.contains("Unknown derivation ATerm format version 'invalid-version'"))
    }

    @Test func dynamicInputsInClassicFormatAreRejected() throws {
        let e = try parseError("bad-old-version-dyn-deps.drv", name: "dyn-dep-derivation")
        #expect(e.reason == .dynamicInputsInClassicFormat)
        let text = try String(contentsOf: dir.appendingPathComponent("bad-old-version-dyn-deps.drv"), encoding: .utf8)
        #expect(Array(text.utf8)[e.offset] == UInt8(ascii: "("))
    }

    @Test func fixedOutputWithWrongPathIsRejected() throws {
        let e = try parseError("bad-ca-fixed-path.drv", name: "fixed")
        #expect(e.reason == .invalid(.fixedOutputPathMismatch(output: "out",
                                                              path: "/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-fixed")))
        #expect(e.description.contains("does not match its content address"))
    }

    @Test func unterminatedStringIsRejected() throws {
        let s = "Derive([(\"out\",\"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo"
        #expect(throws: DerivationParseError.self) { try Derivation(parsing: s, name: "bar") }
        do { _ = try Derivation(parsing: s, name: "bar") } catch {
            #expect(error.reason == .unterminatedString)
            #expect(error.offset == 15)
        }
    }

    /// Output JSON vectors: each kind survives fields → parse, as in the ATerm and on the wire.
    @Test(arguments: ["inputAddressed", "caFixedFlat", "caFixedNAR", "caFixedText", "caFloating", "deferred", "impure"])
    func outputVectors(kind: String) throws {
        let out = try H.output(H.readJSON(dir.appendingPathComponent("output-\(kind).json")))
        let f = try out.fields(drvName: "drv-name", outputName: "output-name", storeDirectory: .default)
        let back = try DerivationOutput(path: f.path, hashAlgo: f.hashAlgo, hash: f.hash, drvName: "drv-name",
                                        outputName: "output-name", storeDirectory: .default)
        #expect(back == out)
        switch kind {
        case "caFixedFlat": #expect(f.hashAlgo == "sha256")
        case "caFixedNAR": #expect(f.hashAlgo == "r:sha256")
        case "caFixedText": #expect(f.hashAlgo == "text:sha256")
        case "caFloating": #expect(f == ("", "r:sha256", ""))
        case "impure": #expect(f == ("", "r:sha256", "impure"))
        case "deferred": #expect(f == ("", "", ""))
        default: #expect(f.path == "/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-drv-name-output-name")
        }
        if kind.hasPrefix("caFixed") {
            #expect(f.hash == "894517c9163c896ec31a2adbd33c0681fd5f45b2c0ef08a64c92a03fb97f390f")
        }
    }

    /// ia/ and ca/ advanced attributes. Upstream keeps their `.drv` files as symlinks into
    /// tests/functional, which the vectors folder does not carry, so the JSON is the source:
    /// render it, parse it back, and read the attributes as upstream's advanced-attrs.cc does.
    @Test(arguments: ["ia", "ca"], ["advanced-attributes", "advanced-attributes-defaults"])
    func advancedAttributes(kind: String, stem: String) throws {
        let json = try H.derivation(H.readJSON(dir.appendingPathComponent("\(kind)/\(stem).json")))
        let text = try json.render(in: .default)
        let parsed = try Derivation(parsing: text, name: json.name)
        #expect(parsed == json)
        #expect(try parsed.render(in: .default) == text)
        let drvFile = try H.bytes(dir.appendingPathComponent("\(kind)/\(stem).drv"))
        if drvFile.first == UInt8(ascii: "D") {
            #expect(drvFile == Array(text.utf8))
        }
        let ca: Set<String> = kind == "ca" ? ["ca-derivations"] : []
        if stem == "advanced-attributes" {
            #expect(try parsed.requiredSystemFeatures() == ca.union(["rainbow", "uid-range"]))
            #expect(try parsed.preferLocalBuild())
            #expect(try !parsed.allowSubstitutes())
        } else {
            #expect(try parsed.requiredSystemFeatures() == ca)
            #expect(try !parsed.preferLocalBuild())
            #expect(try parsed.allowSubstitutes())
        }
        if kind == "ia" && stem == "advanced-attributes-defaults" {
            // No inputs, so the output path follows from the hash modulo alone.
            var hasher = DerivationHasher { p in throw H.BadJSON(message: "unexpected input \(p)") }
            let paths = try hasher.outputPaths(parsed)
            #expect(paths["out"]! == (try StorePath(baseName: "1qsc7svv43m4dw2prh6mvyf7cai5czji-advanced-attributes-defaults")))
        }
    }
}
