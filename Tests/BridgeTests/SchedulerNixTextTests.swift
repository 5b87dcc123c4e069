import Bridge
import Foundation
import NixCore
import Testing
import TestSupport

/// NoMachineFound reads exactly like what real `nix-build -j0 --builders ...` prints for the
/// same derivation and machines.
@Suite(.serialized) struct SchedulerNixTextTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var system: String
        var features: [String]
        var builders: String
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "wrong system", system: "aarch64-linux", features: [],
             builders: "ssh-ng://b1 x86_64-linux"),
        Case(name: "features and a table", system: "aarch64-linux", features: ["kvm", "big-parallel"],
             builders: "ssh://127.0.0.1:1 x86_64-linux,i686-linux - 2 3 kvm,nixos-test benchmark ; localhost aarch64-linux ; ssh-ng://b3 aarch64-linux - 4 1 kvm"),
        Case(name: "mandatory features", system: "x86_64-linux", features: [],
             builders: "ssh-ng://b1 x86_64-linux - 8 1 - benchmark,big-parallel"),
        Case(name: "no machines", system: "aarch64-linux", features: ["kvm"], builders: ""),
    ]

    @Test(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"), arguments: cases)
    func matchesNixBuildJ0(_ c: Case) async throws {
        let dir = try TestSupport.temporaryDirectory("nb-j0")
        let name = "nb-j0-" + c.name.replacingOccurrences(of: " ", with: "-")
        let drvFile = try SchedulerFixtures.instantiate(
            SchedulerFixtures.derivationExpression(name: name, system: c.system, features: c.features), in: dir)
        let real = try SchedulerFixtures.nixBuildJ0(drv: drvFile, builders: c.builders)
        #expect(real.status == 1)

        let drvPath = try StoreDirectory.default.parse(drvFile)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: drvFile)))
        let needs = try BuildNeeds(try Derivation(parsing: bytes, name: Derivation.name(fromDrvPath: drvPath)))
        let machines = try MachinesFile.parse(c.builders, file: nil, localSystem: "x86_64-linux").machines
        let s = Scheduler(machines: machines, stateDirectory: dir.path + "/current-load", warn: { _ in })
        #expect(try await s.acquire(needs) == nil)
        let ours = s.noMachineFound(for: needs, drvPath: drvPath)
        #expect(ours.description == real.text)
        #expect((ours.hint == nil) == machines.isEmpty)
    }

    /// The warning for a machine that fails to connect, against Nix's for a refused ssh port.
    @Test(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
    func disabledWarningMatchesNix() throws {
        let dir = try TestSupport.temporaryDirectory("nb-j0")
        let drvFile = try SchedulerFixtures.instantiate(
            SchedulerFixtures.derivationExpression(name: "nb-j0-refused", system: "aarch64-linux"), in: dir)
        // A bare host means ssh:// (Nix's legacy rule); nothing listens on port 22 here.
        let builders = "127.0.0.1 aarch64-linux"
        let out = try TestSupport.run(["nix-build", "-j0", "--no-out-link", "--option", "substituters", "",
                                       "--option", "connect-timeout", "5", "--builders", builders, drvFile], check: false)
        let line = try #require(out.stderr.split(separator: "\n").first { $0.hasPrefix("cannot build on ") },
                                "nix-build printed: \(out.stderr)")
        let machines = try MachinesFile.parse(builders, file: nil, localSystem: "x86_64-linux").machines
        let prefix = "cannot build on '\(machines[0].storeUri)': "
        #expect(line.hasPrefix(prefix))
        let s = Scheduler(machines: machines, stateDirectory: dir.path, warn: { _ in })
        #expect(s.disable(machines[0], reason: String(line.dropFirst(prefix.count))) == String(line))
    }
}
