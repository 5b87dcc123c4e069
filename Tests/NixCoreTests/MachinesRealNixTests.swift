import Foundation
import NixCore
import Testing
import TestSupport

/// Our Nix 2.8 machines grammar against real Nix 2.8 parsing the same `--builders` text.
@Suite(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct MachinesRealNixTests {
    @Test func sameMachinesAsNix28() throws {
        let fixture = try RealNixMachines.Fixture()
        defer { try? FileManager.default.removeItem(at: fixture.dir) }
        let localSystem = try TestSupport.nix(["eval", "--raw", "--impure", "--expr", "builtins.currentSystem"]).trimmed
        let files = fixture.dir.appendingPathComponent("files")
        let valid = files.appendingPathComponent("valid").path
        let nested = files.appendingPathComponent("nested").path
        try Disk.write("# seed 000\n" + MachinesRulesTests.seed000 + "\n", to: URL(fileURLWithPath: valid))
        try Disk.write("x aarch64-linux\n@\(valid)\n y - - 3", to: URL(fileURLWithPath: nested))
        // Under CI the vectors must be there (an error otherwise); elsewhere their cases are left out.
        let vectors = TestSupport.vectorSuitesRun ? try TestSupport.requireVectors("libstore-tests/data/machines") : nil

        var cases = [
            "nix@scratchy.labs.cs.uu.nl i686-linux,aarch64-linux - 8 1 kvm,big benchmark",
            "a aarch64-linux;b  # x ; c",
            " @\(valid)",
            "@\(valid)",
            "@\(nested) ; z",
            "@/nonexistent/machines",
            "a , - 2 1 kvm2,,kvm2 x,y,x",
            "a x86_64-linux,aarch64-linux,x86_64-linux - +2 - b,a",
            "a aarch64-linux - 1 1 - - QUJD 9th 10th",
            "a aarch64-linux - 0 0 kvm",
            "- aarch64-linux",
            "a aarch64-linux - 1 1.5",
            "a aarch64-linux - 1 -3",
            "a aarch64-linux - 1 1 - - BAD_BASE64",
            "a aarch64-linux - 4294967296",
            "a aarch64-linux - 4294967295",
            "a aarch64-linux ; ; b",
            "a aarch64-linux\n   \nb",
            "a\r\nb\r\n",
            MachinesUpstreamTests.commentsText,
            MachinesUpstreamTests.funnyWhitespace,
            "nix@scratchy.labs.cs.uu.nl\ti686-linux\t/home/nix/.ssh/id_scratchy_auto\t8\t3\tkvm\tbenchmark\tSSH+HOST+PUBLIC+KEY+BASE64+ENCODED==",
            "# only a comment",
        ]
        if let vectors {
            cases += ["@" + vectors.appendingPathComponent("valid").path, "@" + vectors.appendingPathComponent("bad_format").path]
        }
        var agreedMachines = 0, agreedErrors = 0
        for builders in cases {
            let nix = try fixture.outcome(builders: builders)
            do {
                let ours = try MachinesFile.parse(builders, file: nil, localSystem: localSystem, syntax: .nix28, read: Disk.reader)
                #expect(nix == .machines(ours.machines.map(RealNixMachines.row)), "builders: \(builders.debugDescription)")
                agreedMachines += ours.machines.count
            } catch {
                let phrase = RealNixMachines.nixPhrase(error.kind)
                guard case let .error(message) = nix else {
                    Issue.record("we refused \(builders.debugDescription) (\(error)) but Nix 2.8 accepted it: \(nix)")
                    continue
                }
                #expect(message.contains(phrase), "builders: \(builders.debugDescription): \(message) vs \(error)")
                agreedErrors += 1
            }
        }
        // The comparison saw real tables and real refusals, not only empty outcomes.
        #expect(agreedMachines >= 20 && agreedErrors >= 9, "\(agreedMachines) machines, \(agreedErrors) errors")
    }
}
