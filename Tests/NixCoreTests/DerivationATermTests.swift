import NixCore
import Testing

/// The ATerm parser and printer on hand-made inputs: escaping, positions in errors, bounds,
/// output kinds, derivation types and attributes.
struct DerivationATermTests {
    let store = StoreDirectory.default
    static let p1 = "/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-foo"
    static let d1 = "/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-dep.drv"
    static let simple = #"Derive([("out","\#(p1)","","")],[("\#(d1)",["dev","out"])],[],"x86_64-linux","/bin/sh",["-c","a\"b\\c\nd\re\tf"],[("out","\#(p1)"),("x","é☃\n")])"#

    func parseError(_ text: String, name: String = "foo", limits: Derivation.ParseLimits = .init()) -> DerivationParseError? {
        do {
            _ = try Derivation(parsing: text, name: name, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func escapesRoundTrip() throws {
        let drv = try Derivation(parsing: Self.simple, name: "foo")
        #expect(drv.args == ["-c", "a\"b\\c\nd\re\tf"])
        #expect(drv.env["x"] == "é☃\n")
        #expect(try drv.render(in: store) == Self.simple)
        // Any other escaped character stands for itself when reading.
        let other = try Derivation(parsing: Self.simple.replacingOccurrences(of: #""/bin/sh""#, with: #""/bin/\s\h""#), name: "foo")
        #expect(other.builder == "/bin/sh")
    }

    @Test func renderSortsAsNix() throws {
        var drv = try Derivation(parsing: Self.simple, name: "foo")
        drv.env["Z"] = "upper sorts first"
        drv.env["_"] = ""
        let text = try drv.render(in: store)
        #expect(text.contains(#"[("Z","upper sorts first"),("_",""),("out","#))
        #expect(try Derivation(parsing: text, name: "foo") == drv)
    }

    @Test func errorsSayWhereAndWhat() throws {
        let bad = Self.simple.replacingOccurrences(of: #""x86_64-linux","#, with: #""x86_64-linux";"#)
        let e = try #require(parseError(bad))
        let offset = try #require(Array(bad.utf8).firstIndex(of: UInt8(ascii: ";")))
        #expect(e.reason == .expected("','", found: ";"))
        #expect(e.offset == offset && e.line == 1 && e.column == offset + 1)
        #expect(e.description.hasPrefix("derivation 'foo', byte \(offset) (line 1, column \(offset + 1)): expected ','"))

        // Lines count raw newlines (Nix never writes them, but a hand-edited file may have them).
        let multi = try #require(parseError("Derive([(\"a\nb\nc\",x"))
        #expect(multi.reason == .expected("'\"'", found: "x"))
        #expect(multi.line == 3 && multi.column == 4)

        #expect(parseError("")?.reason == .notADerivation)
        #expect(parseError("Derivx(")?.reason == .notADerivation)
        #expect(parseError(Self.simple + " ")?.reason == .trailingData)
        #expect(parseError(String(Self.simple.dropLast()))?.reason == .expected("')'", found: nil))
    }

    @Test func everyTruncationFails() throws {
        let bytes = Array(Self.simple.utf8)
        for n in 0..<bytes.count {
            #expect(throws: DerivationParseError.self) { try Derivation(parsing: Array(bytes[..<n]), name: "foo") }
        }
    }

    @Test func boundsAreEnforced() throws {
        #expect(parseError(Self.simple, limits: .init(maxBytes: 100))?.reason == .tooLarge(limit: 100))
        let nested = #"DrvWithVersion("xp-dyn-drv",[],[("\#(Self.d1)",(["a"],[("a",(["b"],[("b",["c"])]))]))],[],"s","b",[],[])"#
        let drv = try Derivation(parsing: nested, name: "foo")
        #expect(try drv.render(in: store) == nested)
        #expect(parseError(nested, limits: .init(maxNesting: 2))?.reason == .tooDeep(limit: 2))
    }

    @Test func invalidUTF8IsRefused() throws {
        var bytes = Array(Self.simple.utf8)
        let at = try #require(bytes.firstIndex(of: "é".utf8.first!))
        bytes[at] = 0xFF
        do {
            _ = try Derivation(parsing: bytes, name: "foo")
            Issue.record("accepted invalid UTF-8")
        } catch {
            #expect(error.reason == .invalidUTF8)
        }
    }

    @Test func badFieldsAreRefused() throws {
        func withOutput(_ o: String) -> String { #"Derive([\#(o)],[],[],"s","b",[],[])"# }
        #expect(parseError(withOutput(#"("out","/tmp/x","","")"#))?.reason
            == .invalid(.badStorePath("/tmp/x", .notInStore("/tmp/x", storeDir: "/nix/store"))))
        #expect(parseError(withOutput(#"("out","","r:sha3","")"#))?.reason == .invalid(.unknownHashAlgorithm("r:sha3")))
        #expect(parseError(withOutput(#"("out","\#(Self.p1)","r:sha256","")"#))?.reason
            == .invalid(.outputPathNotAllowed(output: "out", kind: "content-addressing")))
        #expect(parseError(withOutput(#"("out","\#(Self.p1)","sha256","impure")"#))?.reason
            == .invalid(.outputPathNotAllowed(output: "out", kind: "impure")))
        #expect(parseError(withOutput(#"("out","\#(Self.p1)","sha256","xyz")"#))?.reason
            == .invalid(.badOutputHash(output: "out", "xyz")))
        #expect(parseError(#"Derive([],[("\#(Self.d1)",[])],[],"s","b",[],[])"#)?.reason == .noOutputsWanted(Self.d1))
        #expect(parseError(#"Derive([],[("\#(Self.d1)",(["a"],[]))],[],"s","b",[],[])"#)?.reason == .dynamicInputsInClassicFormat)
    }

    @Test func outputKindsRoundTrip() throws {
        let h = HashSink.hash(.sha256, string: "x")
        let outputs: [(DerivationOutput, String)] = [
            (.deferred, #"("out","","","")"#),
            (.caFloating(method: .nar, algorithm: .sha256), #"("out","","r:sha256","")"#),
            (.caFloating(method: .text, algorithm: .sha256), #"("out","","text:sha256","")"#),
            (.caFloating(method: .git, algorithm: .sha1), #"("out","","git:sha1","")"#),
            (.impure(method: .flat, algorithm: .sha512), #"("out","","sha512","impure")"#),
        ]
        for (o, aterm) in outputs {
            let drv = Derivation(name: "foo", outputs: ["out": o], system: "s", builder: "b")
            let text = try drv.render(in: store)
            #expect(text == #"Derive([\#(aterm)],[],[],"s","b",[],[])"#)
            #expect(try Derivation(parsing: text, name: "foo") == drv)
        }
        // Fixed outputs of every method: the path printed is the one their parse checks.
        for method in ContentAddressMethod.allCases {
            let drv = Derivation(name: "foo", outputs: ["out": .caFixed(method: method, hash: h)], system: "s", builder: "b")
            let text = try drv.render(in: store)
            #expect(text.contains(method.prefix + "sha256\",\"" + h.string(.base16, withAlgorithm: false)))
            #expect(try Derivation(parsing: text, name: "foo") == drv)
            // Another name gives another path, which the parse then refuses.
            #expect(throws: DerivationParseError.self) { try Derivation(parsing: text, name: "bar") }
        }
    }

    @Test func typesFollowNix() throws {
        func drv(_ outputs: [String: DerivationOutput]) -> Derivation {
            Derivation(name: "foo", outputs: outputs, system: "s", builder: "b")
        }
        let p = try store.parse(Self.p1)
        let h = HashSink.hash(.sha256, string: "x")
        #expect(try drv(["out": .inputAddressed(p)]).type() == .inputAddressed(deferred: false))
        #expect(try drv(["out": .deferred]).type() == .inputAddressed(deferred: true))
        #expect(try drv(["out": .caFixed(method: .nar, hash: h)]).type() == .contentAddressed(fixed: true))
        #expect(try drv(["a": .caFloating(method: .nar, algorithm: .sha256)]).type() == .contentAddressed(fixed: false))
        #expect(try drv(["out": .impure(method: .nar, algorithm: .sha256)]).type() == .impure)
        #expect(throws: DerivationError.invalidType("can't mix derivation output types")) {
            try drv(["out": .inputAddressed(p), "dev": .deferred]).type()
        }
        #expect(throws: DerivationError.invalidType("single fixed output must be named \"out\"")) {
            try drv(["bin": .caFixed(method: .nar, hash: h)]).type()
        }
        #expect(throws: DerivationError.invalidType("all floating outputs must use the same hash type")) {
            try drv(["a": .caFloating(method: .nar, algorithm: .sha256), "b": .caFloating(method: .nar, algorithm: .sha512)]).type()
        }
        #expect(try drv(["out": .impure(method: .nar, algorithm: .sha256)]).requiredSystemFeatures() == ["ca-derivations"])
    }

    @Test func attributesFromEnvAndJSON() throws {
        // Input-addressed: a deferred output would add `ca-derivations` (no known paths).
        var drv = Derivation(name: "foo", outputs: ["out": .inputAddressed(try store.parse(Self.p1))], system: "s", builder: "b",
                             env: ["requiredSystemFeatures": " kvm\tbig-parallel\n\nkvm ", "preferLocalBuild": "true"])
        #expect(try drv.requiredSystemFeatures() == ["kvm", "big-parallel"])
        #expect(try !drv.preferLocalBuild()) // only "1" is true in env
        drv.env = ["__json": #"{"requiredSystemFeatures":["a\u00e9","\ud83d\ude00"],"preferLocalBuild":true,"allowSubstitutes":false,"x":{"y":[1,-2.5e3,null]}}"#]
        #expect(try drv.requiredSystemFeatures() == ["aé", "😀"])
        #expect(try drv.preferLocalBuild())
        #expect(try !drv.allowSubstitutes())
        drv.env = ["__json": #"{"preferLocalBuild":"1","requiredSystemFeatures":"kvm"}"#]
        #expect(throws: DerivationError.attributeType(name: "preferLocalBuild", expected: "a Boolean")) { try drv.preferLocalBuild() }
        #expect(throws: DerivationError.attributeType(name: "requiredSystemFeatures", expected: "a list of strings")) {
            try drv.requiredSystemFeatures()
        }
        drv.env = ["__json": #"{"a":[1,2"#]
        #expect(throws: DerivationError.self) { try drv.allowSubstitutes() }
        drv.env = ["__json": String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)]
        #expect(throws: DerivationError.self) { try drv.allowSubstitutes() }
    }

    @Test func basicDerivationKeepsEverythingButInputDrvs() throws {
        let drv = try Derivation(parsing: Self.simple, name: "foo")
        let extra = try store.parse("/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-dep")
        let basic = BasicDerivation(drv, inputClosure: [extra])
        #expect(basic.inputSrcs == [extra])
        #expect(basic.outputs == drv.outputs && basic.env == drv.env && basic.args == drv.args)
        #expect(basic.system == drv.system && basic.builder == drv.builder && basic.name == drv.name)
        let fields = try basic.outputFields(in: store)
        #expect(fields.count == 1 && fields[0].name == "out" && fields[0].path == Self.p1 && fields[0].hashAlgo == "")
        #expect(basic.asDerivation.inputDrvs.isEmpty)
        #expect(try basic.asDerivation.render(in: store).contains(#"[],["/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-dep"]"#))
    }

    @Test func namesMustMakeValidPaths() throws {
        let drv = Derivation(name: "a b", outputs: ["out": .caFixed(method: .nar, hash: HashSink.hash(.sha256, string: ""))],
                             system: "s", builder: "b")
        let deferred = Derivation(name: "a b", outputs: ["out": .deferred], system: "s", builder: "b")
        #expect(throws: DerivationError.badDerivationName("a b", .illegalCharacter("a b.drv", " "))) {
            try deferred.storePath(in: store)
        }
        #expect(throws: DerivationError.badOutputName(drvName: "a b", output: "out", .illegalCharacter("a b", " "))) {
            try drv.render(in: store)
        }
    }

    @Test func otherStoreDirectories() throws {
        let other = StoreDirectory("/gnu/store")
        let text = Self.simple.replacingOccurrences(of: "/nix/store", with: "/gnu/store")
        let drv = try Derivation(parsing: text, name: "foo", storeDirectory: other)
        #expect(try drv.render(in: other) == text)
        #expect(throws: DerivationParseError.self) { try Derivation(parsing: text, name: "foo") }
    }
}

/// Found by the aterm fuzz target: Nix's `unparse` prints the system (and output names)
/// with `printUnquotedString`, so a system holding a quote is printed as is, and the text
/// does not read back; the writer does the same, since those bytes feed every output path.
@Suite("ATerm fields printed unquoted, as Nix does")
struct ATermUnquotedFieldTests {
    @Test func aQuoteInTheSystemIsPrintedAsNixPrintsIt() throws {
        let drv = Derivation(name: "q", outputs: [:], system: "x\",\"y", builder: "/bin/sh")
        let text = try drv.render(in: .default)
        #expect(text.contains(",\"x\",\"y\",\"/bin/sh\""))
        #expect(throws: DerivationParseError.self) { try Derivation(parsing: text, name: "q") }
    }
}
