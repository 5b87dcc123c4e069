import Foundation
import NixCore
import Testing
import TestSupport

/// Nix's own machines tests (src/libstore-tests/machines.cc, and 2.8's src/libstore/tests),
/// with the local system `TEST_ARCH-TEST_OS` as there.
@Suite struct MachinesUpstreamTests {
    let local = "TEST_ARCH-TEST_OS"

    func parse(_ text: String, _ syntax: MachinesFile.Syntax = .nix28) throws -> [Machine] {
        try MachinesFile.parse(text, file: nil, localSystem: local, syntax: syntax, read: Disk.reader).machines
    }

    @Test func emptyBuilders() throws {
        #expect(try parse("").isEmpty)
        #expect(try parse("", .current).isEmpty)
    }

    @Test func uriOnly() throws {
        let m = try #require(try parse("nix@scratchy.labs.cs.uu.nl").first)
        #expect(m.storeUri == "ssh://nix@scratchy.labs.cs.uu.nl")
        #expect(m.systemTypes == [local])
        #expect(m.sshKey == nil)
        #expect(m.maxJobs == 1)
        #expect(m.speedFactor == 1)
        #expect(m.supportedFeatures.isEmpty && m.mandatoryFeatures.isEmpty)
        #expect(m.sshPublicHostKey == nil)
    }

    @Test func uriWithPort() throws {
        #expect(try parse("nix@scratchy.labs.cs.uu.nl:2222").first?.storeUri == "ssh://nix@scratchy.labs.cs.uu.nl:2222")
    }

    @Test func dashesAreDefaults() throws {
        let all = try parse("nix@scratchy.labs.cs.uu.nl - - - - - - -")
        #expect(all == [Machine(storeUri: "nix@scratchy.labs.cs.uu.nl", systemTypes: [local])])
    }

    @Test func newlineAndSemicolonSeparators() throws {
        for syntax in [MachinesFile.Syntax.nix28, .current] {
            let a = try parse("nix@scratchy.labs.cs.uu.nl\nnix@itchy.labs.cs.uu.nl", syntax)
            let b = try parse("nix@scratchy.labs.cs.uu.nl ; nix@itchy.labs.cs.uu.nl", syntax)
            #expect(a.map(\.authority) == ["nix@scratchy.labs.cs.uu.nl", "nix@itchy.labs.cs.uu.nl"])
            #expect(b.map(\.authority) == a.map(\.authority))
        }
    }

    static let commentsText = """
        # This is a comment ; this is still that comment
        nix@scratchy.labs.cs.uu.nl ; nix@itchy.labs.cs.uu.nl
        # This is also a comment ; this also is still that comment
        nix@scabby.labs.cs.uu.nl

        """

    @Test func commentsAndSemicolonsCurrent() throws {
        let m = try parse(Self.commentsText, .current)
        #expect(m.map(\.authority) == ["nix@scratchy.labs.cs.uu.nl", "nix@itchy.labs.cs.uu.nl", "nix@scabby.labs.cs.uu.nl"])
    }

    /// Nix 2.8 splits at `;` before cutting comments: the text after `;` is a machine entry,
    /// here `this is still that comment`, whose max-jobs column `that` is refused.
    @Test func commentsAndSemicolonsNix28() throws {
        let e = #expect(throws: MachinesError.self) { try parse(Self.commentsText, .nix28) }
        #expect(e?.kind == .invalidMaxJobs("that"))
        #expect(e?.location.line == 1)
        #expect(e?.entry == " this is still that comment")
        // Without the number column the piece is a (bogus) machine.
        let m = try parse("# a comment ; host x86_64-linux", .nix28)
        #expect(m.map(\.storeUri) == ["ssh://host"])
    }

    static let funnyWhitespace = "        # comment ; comment\n   nix@scratchy.labs.cs.uu.nl ; nix@itchy.labs.cs.uu.nl   \n\n    \n\n ;;; \n\n ; ; \nnix@scabby.labs.cs.uu.nl\n\n"

    @Test func funnyWhitespaceCurrent() throws {
        #expect(try parse(Self.funnyWhitespace, .current).map(\.authority)
            == ["nix@scratchy.labs.cs.uu.nl", "nix@itchy.labs.cs.uu.nl", "nix@scabby.labs.cs.uu.nl"])
    }

    /// Nix 2.8 never trims pieces (its `trim(line)` result is dropped): blanks are an error.
    @Test func funnyWhitespaceNix28() throws {
        let e = #expect(throws: MachinesError.self) { try parse(Self.funnyWhitespace, .nix28) }
        #expect(e?.kind == .missingStoreUri)
        #expect(e?.location.line == 1)
    }

    @Test(arguments: [
        "nix@scratchy.labs.cs.uu.nl     i686-linux      /home/nix/.ssh/id_scratchy_auto        8 3 kvm benchmark SSH+HOST+PUBLIC+KEY+BASE64+ENCODED==",
        "nix@scratchy.labs.cs.uu.nl\ti686-linux\t/home/nix/.ssh/id_scratchy_auto\t8\t3\tkvm\tbenchmark\tSSH+HOST+PUBLIC+KEY+BASE64+ENCODED==",
    ])
    func completeSingleBuilder(_ line: String) throws {
        for syntax in [MachinesFile.Syntax.nix28, .current] {
            let all = try parse(line, syntax)
            let m = try #require(all.first)
            #expect(all.count == 1)
            #expect(m.storeUri == "ssh://nix@scratchy.labs.cs.uu.nl")
            #expect(m.systemTypes == ["i686-linux"])
            #expect(m.sshKey == "/home/nix/.ssh/id_scratchy_auto")
            #expect(m.maxJobs == 8)
            #expect(m.speedFactor == 3)
            #expect(m.supportedFeatures == ["kvm"])
            #expect(m.mandatoryFeatures == ["benchmark"])
            #expect(m.sshPublicHostKey?.base64 == "SSH+HOST+PUBLIC+KEY+BASE64+ENCODED==")
        }
    }

    @Test func multiOptions() throws {
        let m = try #require(try parse("nix@scratchy.labs.cs.uu.nl Arch1,Arch2 - - - SupportedFeature1,SupportedFeature2 MandatoryFeature1,MandatoryFeature2").first)
        #expect(m.systemTypes == ["Arch1", "Arch2"])
        #expect(m.supportedFeatures == ["SupportedFeature1", "SupportedFeature2"])
        #expect(m.mandatoryFeatures == ["MandatoryFeature1", "MandatoryFeature2"])
    }

    @Test func incorrectFormats() throws {
        func kind(_ s: String, _ syntax: MachinesFile.Syntax) -> MachinesError.Kind? {
            #expect(throws: MachinesError.self) { try parse(s, syntax) }?.kind
        }
        for syntax in [MachinesFile.Syntax.nix28, .current] {
            #expect(kind("nix@scratchy.labs.cs.uu.nl - - eight", syntax) == .invalidMaxJobs("eight"))
            #expect(kind("nix@scratchy.labs.cs.uu.nl - - -1", syntax) == .invalidMaxJobs("-1"))
            #expect(kind("nix@scratchy.labs.cs.uu.nl - - 8 three", syntax) == .invalidSpeedFactor("three", floats: syntax == .current))
            guard case .invalidHostKey("BAD_BASE64", _)? = kind("nix@scratchy.labs.cs.uu.nl - - 8 3 - - BAD_BASE64", syntax) else {
                Issue.record("BAD_BASE64 accepted")
                continue
            }
        }
        // Nix 2.8 reads an unsigned int; later Nix a float, refusing negatives with its own message.
        #expect(kind("nix@scratchy.labs.cs.uu.nl - - 8 -3", .nix28) == .invalidSpeedFactor("-3", floats: false))
        #expect(kind("nix@scratchy.labs.cs.uu.nl - - 8 -3", .current) == .negativeSpeedFactor("-3"))
    }

    var vectors: URL? { TestSupport.upstreamVectors?.appendingPathComponent("libstore-tests/data/machines") }

    @Test func correctFileReference() throws {
        let dir = try #require(vectors, "upstream vectors missing")
        let file = try MachinesFile.parse("@" + dir.appendingPathComponent("valid").path, file: nil, localSystem: local, read: Disk.reader)
        #expect(file.machines.map(\.authority) == ["nix@scratchy.labs.cs.uu.nl", "nix@itchy.labs.cs.uu.nl", "nix@poochie.labs.cs.uu.nl"])
        #expect(file.warnings.isEmpty)
        let poochie = file.machines[2]
        #expect(poochie.maxJobs == 1 && poochie.speedFactor == 2)
        #expect(poochie.supportedFeatures == ["kvm"] && poochie.mandatoryFeatures == ["benchmark"])
        let key = try #require(poochie.sshPublicHostKey)
        #expect(key.keyType == "ssh-rsa")
        #expect(key.openSSHLine?.hasPrefix("ssh-rsa AAAAB3NzaC1yc2E") == true)
        #expect(Base64.encode(key.decoded) == key.base64)
    }

    @Test func referenceToEmptyFile() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty-machines")
        try Disk.write("", to: empty)
        #expect(try parse("@" + empty.path).isEmpty)
    }

    @Test func referenceToMissingFile() throws {
        let file = try MachinesFile.parse("@/not/a/file", file: nil, localSystem: local, read: Disk.reader)
        #expect(file.machines.isEmpty)
        #expect(file.warnings == [.missingFile(path: "/not/a/file", at: MachinesLocation(source: .setting("builders"), line: 1, column: 1))])
    }

    @Test func referenceToIncorrectFile() throws {
        let dir = try #require(vectors, "upstream vectors missing")
        let path = dir.appendingPathComponent("bad_format").path
        let e = #expect(throws: MachinesError.self) { try parse("@" + path) }
        #expect(e?.kind == .invalidMaxJobs("eight"))
        #expect(e?.location == MachinesLocation(source: .file(path), line: 1, column: 32))
        #expect(e?.includedFrom == [MachinesLocation(source: .setting("builders"), line: 1, column: 1)])
        #expect(e?.description == """
            machines file '\(path)', line 1, column 32: invalid max-jobs 'eight' (expected a non-negative integer) in 'nix@scratchy.labs.cs.uu.nl - - eight'
              included from 'builders' setting, line 1, column 1
            """)
    }
}
