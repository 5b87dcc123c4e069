import Foundation
import NixCore
import Testing
import TestSupport

/// The seeds' examples and the rules around them.
@Suite struct MachinesRulesTests {
    /// Seed 000 (Nix manual, Remote Builds).
    static let seed000 = """
        nix@scratchy.labs.cs.uu.nl  i686-linux      /home/nix/.ssh/id_scratchy_auto        8 1 kvm
        nix@itchy.labs.cs.uu.nl     i686-linux      /home/nix/.ssh/id_scratchy_auto        8 2
        nix@poochie.labs.cs.uu.nl   i686-linux      /home/nix/.ssh/id_scratchy_auto        1 2 kvm benchmark
        """

    @Test func seed000FeaturesAndMandatoryFeatures() throws {
        let m = try MachinesFile.parse(Self.seed000, file: "/etc/nix/machines", localSystem: "x86_64-linux").machines
        let (scratchy, itchy, poochie) = (m[0], m[1], m[2])
        // poochie only does builds asking for benchmark (and maybe kvm).
        #expect(!poochie.mandatoryMet([]) && !poochie.mandatoryMet(["kvm"]))
        #expect(poochie.mandatoryMet(["benchmark"]) && poochie.allSupported(["benchmark"]))
        #expect(poochie.mandatoryMet(["benchmark", "kvm"]) && poochie.allSupported(["benchmark", "kvm"]))
        // itchy cannot do kvm; scratchy can.
        #expect(!itchy.allSupported(["kvm"]) && scratchy.allSupported(["kvm"]))
        #expect(itchy.speedFactor > scratchy.speedFactor)
        #expect(m.allSatisfy { $0.systemSupported("i686-linux") && $0.systemSupported("builtin") && !$0.systemSupported("x86_64-linux") })
    }

    @Test func seed000InlineBuilders() throws {
        let m = try MachinesFile.parse("ssh://mac x86_64-darwin ; ssh://beastie x86_64-freebsd", file: nil, localSystem: "x86_64-linux").machines
        #expect(m.map(\.storeUri) == ["ssh://mac", "ssh://beastie"])
        #expect(m.map(\.systemTypes) == [["x86_64-darwin"], ["x86_64-freebsd"]])
    }

    /// Seed 002: the old remote-systems.conf of NIX_REMOTE_SYSTEMS.
    static let seed002 = """
        nix@mcflurry.labs.cs.uu.nl  x86_64-darwin   /home/nix/.ssh/id_quarterpounder_auto  2
        nix@scratchy.labs.cs.uu.nl  i686-linux      /home/nix/.ssh/id_scratchy_auto        8 1 kvm
        nix@itchy.labs.cs.uu.nl     i686-linux      /home/nix/.ssh/id_scratchy_auto        8 2
        nix@poochie.labs.cs.uu.nl   i686-linux      /home/nix/.ssh/id_scratchy_auto        8 2 kvm perf
        """

    @Test(arguments: [MachinesFile.Syntax.remoteSystemsConf, .nix28, .current])
    func seed002RemoteSystemsConf(_ syntax: MachinesFile.Syntax) throws {
        let m = try MachinesFile.parse(Self.seed002, file: "/etc/nix/remote-systems.conf", localSystem: "x86_64-linux", syntax: syntax).machines
        #expect(m.count == 4)
        #expect(m[0].storeUri == "ssh://nix@mcflurry.labs.cs.uu.nl" && m[0].maxJobs == 2 && m[0].speedFactor == 1)
        #expect(m[0].sshKey == "/home/nix/.ssh/id_quarterpounder_auto")
        let poochie = m[3]
        #expect(poochie.mandatoryMet(["kvm", "perf"]) && poochie.mandatoryMet(["perf"]) && !poochie.mandatoryMet(["kvm"]))
        #expect(poochie.allSupported(["kvm", "perf"]))
    }

    @Test func remoteSystemsConfDifferences() throws {
        func parse(_ s: String) throws -> MachinesFile {
            try MachinesFile.parse(s, file: "/etc/nix/remote-systems.conf", localSystem: "x86_64-linux", syntax: .remoteSystemsConf)
        }
        // One machine per line: `;` is part of a column, not a separator.
        #expect(try parse("a x86_64-linux;b").machines.map(\.systemTypes) == [["x86_64-linux;b"]])
        // No includes, no host key column (ignored with a warning), systems required.
        #expect(#expect(throws: MachinesError.self) { try parse("@/etc/nix/machines") }?.kind == .includeNotSupported("@/etc/nix/machines"))
        let extra = try parse("a x86_64-linux k 1 1 f g QUJD")
        #expect(extra.machines.first?.sshPublicHostKey == nil)
        #expect(extra.warnings == [.ignoredColumns(["QUJD"], at: MachinesLocation(source: .file("/etc/nix/remote-systems.conf"), line: 1, column: 1))])
        let e = #expect(throws: MachinesError.self) { try parse("\n# c\n  a") }
        #expect(e?.kind == .missingSystems && e?.location.line == 3)
    }

    @Test func storeUriNormalisation() {
        let cases = [
            "mac": "ssh://mac", "nix@mac": "ssh://nix@mac", "nix@mac:2222": "ssh://nix@mac:2222",
            "ssh-ng://builder": "ssh-ng://builder", "ssh://u@h?ssh-key=/k": "ssh://u@h?ssh-key=/k",
            "auto": "auto", "daemon": "daemon", "local": "local", "local?root=/x": "local?root=/x",
            "daemon?x=y": "daemon?x=y", "?root=/x": "?root=/x", "/var/store": "/var/store",
            "unix:///run/nix.sock": "unix:///run/nix.sock", "localhost": "ssh://localhost", "autox": "ssh://autox",
        ]
        for (given, expected) in cases {
            #expect(Machine.normalizedStoreUri(given) == expected, "\(given)")
        }
    }

    @Test func storeParametersFollowNix() throws {
        let m = try #require(try MachinesFile.parse("ssh-ng://nix@b1?ssh-key=/uri-key&remote-program=nix-daemon b1sys /col-key 2 1 kvm big QUJD",
                                                    file: nil, localSystem: "x").machines.first)
        #expect(m.scheme == "ssh-ng" && m.authority == "nix@b1")
        // The column wins over the URI's `ssh-key` (Nix inserts the query without replacing).
        #expect(m.effectiveSSHKey == "/col-key")
        #expect(m.storeParameters == ["ssh-key": "/col-key", "remote-program": "nix-daemon", "system-features": "kvm big",
                                      "base64-ssh-public-host-key": "QUJD"])
        let uriKeyOnly = try #require(try MachinesFile.parse("ssh://b2?ssh-key=%2Froot%2Fk", file: nil, localSystem: "x").machines.first)
        #expect(uriKeyOnly.effectiveSSHKey == "/root/k")
        #expect(uriKeyOnly.storeParameters["max-connections"] == "1" && uriKeyOnly.storeParameters["log-fd"] == "4")
    }

    @Test func numbersFollowNix() throws {
        func one(_ s: String, _ syntax: MachinesFile.Syntax = .nix28) throws -> Machine {
            try #require(try MachinesFile.parse(s, file: nil, localSystem: "x", syntax: syntax).machines.first)
        }
        #expect(try one("h - - +8").maxJobs == 8)
        #expect(try one("h - - 0").maxJobs == 0)
        #expect(try one("h - - 4294967295").maxJobs == UInt32.max)
        #expect(throws: MachinesError.self) { try one("h - - 4294967296") }
        #expect(throws: MachinesError.self) { try one("h - - 8 1.5") }
        #expect(try one("h - - 8 0").speedFactor == 1)
        #expect(try one("h - - 8 1.5", .current).speedFactor == 1.5)
        #expect(try one("h - - 8 0", .current).speedFactor == 1)
        #expect(try one("h - - 8 2e1", .current).speedFactor == 20)
        #expect(throws: MachinesError.self) { try one("h - - 8 nan", .current) }
        #expect(try one("h a,,b,a").systemTypes == ["a", "b", "a"])
    }

    @Test(.tags(.hostTools), .enabled(if: TestSupport.has("ssh-keygen"), "needs ssh-keygen (openssh-client)"))
    func hostKeyFromRealSSHKeygen() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("host").path
        try TestSupport.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@builder1", "-f", key])
        let line = try #require(try Disk.reader(key + ".pub"))
        let base64 = Base64.encode(Array(line.utf8))
        let m = try #require(try MachinesFile.parse("ssh-ng://b1 x86_64-linux - 1 1 - - \(base64)", file: nil, localSystem: "x").machines.first)
        let hostKey = try #require(m.sshPublicHostKey)
        #expect(hostKey.keyType == "ssh-ed25519")
        #expect(hostKey.comment == "root@builder1")
        let blob = try Base64.decode(line.split(separator: " ")[1])
        #expect(hostKey.keyBlob == blob && blob.count == 51)
        #expect(hostKey == SSHPublicHostKey(openSSHLine: line))
        // `ssh-keygen -l` agrees that the decoded line is that key.
        let fingerprint = try TestSupport.run(["ssh-keygen", "-l", "-f", "/dev/stdin"], input: Data(hostKey.decoded)).trimmed
        #expect(fingerprint == (try TestSupport.run(["ssh-keygen", "-l", "-f", key + ".pub"]).trimmed))
    }

    @Test func hostKeyErrors() throws {
        let e = #expect(throws: MachinesError.self) {
            try MachinesFile.parse("h - - 1 1 - - c3NoLWVk!ZXk=", file: "/etc/nix/machines", localSystem: "x")
        }
        #expect(e?.location == MachinesLocation(source: .file("/etc/nix/machines"), line: 1, column: 15))
        #expect(e?.description.hasPrefix("machines file '/etc/nix/machines', line 1, column 15: invalid SSH public host key 'c3NoLWVk!ZXk=' (expected base64 of an OpenSSH public key line: invalid character '!'") == true)
        // Base64 that is not an OpenSSH line is accepted (as by Nix) but has no key blob.
        let odd = try #require(try MachinesFile.parse("h - - 1 1 - - QUJD", file: nil, localSystem: "x").machines.first?.sshPublicHostKey)
        #expect(odd.decoded == Array("ABC".utf8) && odd.keyBlob == nil)
    }

    @Test func errorMessagesNamePlaceTextAndExpectation() {
        let text = "# builders\nb1 x86_64-linux - 4\nb2 x86_64-linux - x 1\n"
        let e = #expect(throws: MachinesError.self) { try MachinesFile.parse(text, file: "/etc/nix/machines", localSystem: "x") }
        #expect(e?.description == "machines file '/etc/nix/machines', line 3, column 19: invalid max-jobs 'x' (expected a non-negative integer) in 'b2 x86_64-linux - x 1'")
        let s = #expect(throws: MachinesError.self) { try MachinesFile.parse("- x86_64-linux", file: nil, localSystem: "x") }
        #expect(s?.description == "'builders' setting, line 1, column 1: bad machine specification: no store URI (expected a store URI or host name in the first column) in '- x86_64-linux'")
    }

    @Test func includesNestCycleAndDepth() throws {
        let files = Disk.Files([
            "/etc/nix/machines": "a x86_64-linux\n@/etc/nix/more\n",
            "/etc/nix/more": "b aarch64-linux;@/etc/nix/last",
            "/etc/nix/last": "# only a comment\n",
            "/loop/a": "@/loop/b", "/loop/b": "x\n@/loop/a",
        ])
        let ok = try MachinesFile.parse("@/etc/nix/machines ; c", file: nil, localSystem: "x", read: files.read)
        #expect(ok.machines.map(\.authority) == ["a", "b", "c"])
        #expect(files.asked == ["/etc/nix/machines", "/etc/nix/more", "/etc/nix/last"])
        let cycle = #expect(throws: MachinesError.self) { try MachinesFile.parse("@/loop/a", file: nil, localSystem: "x", read: files.read) }
        #expect(cycle?.kind == .includeCycle(path: "/loop/a"))
        #expect(cycle?.location == MachinesLocation(source: .file("/loop/b"), line: 2, column: 1))
        #expect(cycle?.includedFrom.count == 2)
        var deep: [String: String] = [:]
        for i in 0..<40 { deep["/d/\(i)"] = "@/d/\(i + 1)" }
        let nested = Disk.Files(deep)
        let tooDeep = #expect(throws: MachinesError.self) { try MachinesFile.parse("@/d/0", file: nil, localSystem: "x", read: nested.read) }
        #expect(tooDeep?.kind == .includeTooDeep(path: "/d/16", limit: 16))
    }

    @Test func unreadableIncludeIsAnError() {
        let files = Disk.Files(["/m": "a"])
        files.failing = ["/m"]
        let e = #expect(throws: MachinesError.self) { try MachinesFile.parse("@/m", file: nil, localSystem: "x", read: files.read) }
        #expect(e?.kind == .unreadable(path: "/m", reason: "cannot read '/m'"))
    }

    @Test func nix28IncludeNeedsTheAtFirst() throws {
        // ` @/m` keeps its leading blank in Nix 2.8, so it is a store URI, not an include.
        let files = Disk.Files(["/m": "a"])
        let m = try MachinesFile.parse("x; @/m", file: nil, localSystem: "sys", read: files.read).machines
        #expect(m.map(\.storeUri) == ["ssh://x", "@/m"])
        #expect(try MachinesFile.parse("x; @/m", file: nil, localSystem: "sys", syntax: .current, read: files.read).machines.map(\.storeUri) == ["ssh://x", "ssh://a"])
    }

    @Test func limitsAreEnforced() {
        var limits = MachinesFile.Limits()
        limits.maxMachines = 2
        let e = #expect(throws: MachinesError.self) {
            try MachinesFile.parse("a\nb\nc", file: nil, localSystem: "x", limits: limits, read: { _ in nil })
        }
        #expect(e?.kind == .tooLarge(what: "machine list", limit: 2))
        limits = MachinesFile.Limits()
        limits.maxEntryBytes = 10
        #expect(throws: MachinesError.self) {
            try MachinesFile.parse("a-very-long-host-name", file: nil, localSystem: "x", limits: limits, read: { _ in nil })
        }
    }

    @Test func machinesFileLineRoundTrips() throws {
        let text = Self.seed000 + "\nssh-ng://nix@b1?ssh-key=/k x86_64-linux,aarch64-linux - 0 1.5 - big QUJD\nlocal"
        let machines = try MachinesFile.parse(text, file: nil, localSystem: "x86_64-linux", syntax: .current).machines
        #expect(machines[3].machinesFileLine == "ssh-ng://nix@b1?ssh-key=/k x86_64-linux,aarch64-linux - 0 1.5 - big QUJD")
        #expect(machines[4].machinesFileLine == "local x86_64-linux - 1 1")
        let again = try MachinesFile.parse(machines.map(\.machinesFileLine).joined(separator: "\n"), file: nil,
                                           localSystem: "other", syntax: .current).machines
        #expect(again == machines)
    }
}
