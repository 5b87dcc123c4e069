import NixCore
import Testing
@testable import Bridge

/// The judgement of `nix-bridge check` over given probe results; the real fleet's output is
/// checked in StatusCLITests.
struct SetupCheckTests {
    static let settings = Settings(NixConfig(host: NixConfig.Host(system: "x86_64-linux")))

    static func machine(pinned: Bool) throws -> Machine {
        let key = "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUFBQkFnTUVCUVlIQ0FrS0N3d05EZzhRRVJJVEZCVVdGeGdaR2hzY0hSNGY="
        let line = "ssh-ng://builder1 x86_64-linux - 1 1 - -" + (pinned ? " \(key)" : "")
        return try #require(MachinesFile.parse(line, file: nil, localSystem: "x86_64-linux").machines.first)
    }

    static func status(pinned: Bool = true, recent: RecentPaths?) throws -> MachineStatus {
        var ping = PingReport(store: "ssh-ng://builder1")
        (ping.nixVersion, ping.protocolVersion, ping.trusted) = ("2.8.0", "1.34", true)
        return MachineStatus(machine: try machine(pinned: pinned), ping: ping, slotsInUse: 0, recent: recent)
    }

    static func step(_ steps: [SetupCheck.Step], _ name: String) throws -> SetupCheck.Step {
        try #require(steps.first { $0.name == name }, "\(steps.map(\.name))")
    }

    @Test func aKnownHostsEntryPinsTheHostKeyAsTheMachinesFileDoes() throws {
        let signed = RecentPaths(sampled: 2, inputAddressed: 2, unsigned: 0,
                                 keys: [SigningKeyUse(name: "builder1-1", trusted: true, paths: 2)])
        let inMachines = SetupCheck.steps(try Self.status(recent: signed), settings: Self.settings)
        #expect(try Self.step(inMachines, "host key pinned") == .init(name: "host key pinned", outcome: .pass, detail: "in the machines file", fix: nil))

        let known = SetupCheck.steps(try Self.status(pinned: false, recent: signed), settings: Self.settings,
                                     knownHosts: (name: "builder1", entries: ["/root/.ssh/known_hosts:3"]))
        let k = try Self.step(known, "host key pinned")
        #expect(k.outcome == .pass && k.detail == "in known_hosts as 'builder1' (/root/.ssh/known_hosts:3)", "\(k)")

        let neither = SetupCheck.steps(try Self.status(pinned: false, recent: signed), settings: Self.settings,
                                       knownHosts: (name: "[192.0.2.1]:2222", entries: []))
        let n = try Self.step(neither, "host key pinned")
        #expect(n.failed && n.detail == "no host key in the machines file (8th field), nor in known_hosts as '[192.0.2.1]:2222'", "\(n)")
        #expect(n.fix?.contains("8th field of its machines line") == true && n.fix?.contains("root's known_hosts") == true)
    }

    @Test func aBuilderWithOnlyContentAddressedPathsIsNotFailedForItsKey() throws {
        let onlyCA = RecentPaths(sampled: 4, inputAddressed: 0, unsigned: 0, keys: [])
        let steps = SetupCheck.steps(try Self.status(recent: onlyCA), settings: Self.settings)
        let key = try Self.step(steps, "a signing key in secret-key-files")
        #expect(key.outcome == .skip && key.fix == nil, "\(key)")
        #expect(key.detail == "cannot tell: none of its 4 most recent paths is input-addressed (built there)")
        #expect(try Self.step(steps, "recent paths signed").outcome == .pass)
        #expect(!steps.contains { $0.name == "its key in the local trusted-public-keys" })
        #expect(SetupCheck.allPassed([.init(storeUri: "ssh-ng://builder1", steps: steps.filter { $0.name != "local substituters line" })]))

        let empty = SetupCheck.steps(try Self.status(recent: RecentPaths(sampled: 0, inputAddressed: 0, unsigned: 0, keys: [])),
                                     settings: Self.settings)
        #expect(try Self.step(empty, "a signing key in secret-key-files").outcome == .skip)

        let unsigned = SetupCheck.steps(try Self.status(recent: RecentPaths(sampled: 3, inputAddressed: 1, unsigned: 1, keys: [])),
                                        settings: Self.settings)
        let u = try Self.step(unsigned, "a signing key in secret-key-files")
        #expect(u.failed && u.detail == "none of its 1 recent input-addressed paths is signed", "\(u)")
        #expect(!SetupCheck.allPassed([.init(storeUri: "ssh-ng://builder1", steps: unsigned)]))
    }
}
