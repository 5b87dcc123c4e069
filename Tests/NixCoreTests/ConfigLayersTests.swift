import Foundation
import NixCore
import Testing
import TestSupport

/// Where Nix 2.8 looks for configuration and in which order, the typed defaults, and the
/// machines the settings lead to.
@Suite struct ConfigLayersTests {
    let host = NixConfig.Host(system: "x86_64-linux", cores: 4)

    @Test func defaultsAreNix28s() throws {
        let s = try NixConfig.load(environment: [:], host: host, read: { _ in nil }).settings
        #expect(s.builders == "@/etc/nix/machines")
        #expect(s.substituters == ["https://cache.nixos.org/"])
        #expect(s.trustedPublicKeys == ["cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="])
        #expect(s.secretKeyFiles.isEmpty && s.trustedSubstituters.isEmpty)
        #expect(s.maxJobs == 1)
        #expect(s.narinfoCachePositiveTTL == 2_592_000 && s.narinfoCacheNegativeTTL == 3600)
        #expect(s.buildersUseSubstitutes == false && s.requireSigs == true)
        #expect(s.system == "x86_64-linux" && s.store == "auto" && s.connectTimeout == 0)
        #expect(s.systemFeatures == ["nixos-test", "benchmark", "big-parallel"] && s.extraPlatforms.isEmpty)
        #expect(s.trustedUsers == ["root"])
    }

    @Test func filesAreReadInNixsOrder() throws {
        let env = ["HOME": "/home/al", "XDG_CONFIG_DIRS": "/xdg/a:/xdg/b"]
        #expect(NixConfig.userConfigFiles(environment: env) == ["/home/al/.config/nix/nix.conf", "/xdg/a/nix/nix.conf", "/xdg/b/nix/nix.conf"])
        #expect(NixConfig.userConfigFiles(environment: ["XDG_CONFIG_HOME": "/cfg", "HOME": "/h"]) == ["/cfg/nix/nix.conf", "/etc/xdg/nix/nix.conf"])
        #expect(NixConfig.userConfigFiles(environment: ["NIX_USER_CONF_FILES": "/u1:/u2", "HOME": "/h"]) == ["/u1", "/u2"])
        #expect(NixConfig.userConfigFiles(environment: ["NIX_USER_CONF_FILES": ""]).isEmpty)
        let files = Disk.Files([
            "/etc/nix/nix.conf": "max-jobs = 1\nsubstituters = sys\nconnect-timeout = 1\nrequire-sigs = false",
            "/xdg/b/nix/nix.conf": "max-jobs = 2\nextra-substituters = b",
            "/xdg/a/nix/nix.conf": "max-jobs = 3\nextra-substituters = a\nconnect-timeout = 3",
            "/home/al/.config/nix/nix.conf": "max-jobs = 4\nextra-substituters = home",
        ])
        var all = env
        all["NIX_CONFIG"] = "connect-timeout = 9\nextra-substituters = env"
        let c = try NixConfig.load(environment: all, host: host, overrides: [.maxJobs("auto"), .option("extra-substituters", "cli"), .flag("require-sigs", true)], read: files.read)
        #expect(files.asked == ["/etc/nix/nix.conf", "/xdg/b/nix/nix.conf", "/xdg/a/nix/nix.conf", "/home/al/.config/nix/nix.conf"])
        let s = c.settings
        #expect(s.substituters == ["sys", "b", "a", "home", "env", "cli"])
        #expect(s.maxJobs == 4 && s.connectTimeout == 9 && s.requireSigs == true)
        #expect(c.origins["max-jobs"] == ConfigLocation(.commandLine))
        #expect(c.origins["connect-timeout"] == ConfigLocation(.environment("NIX_CONFIG"), line: 1))
    }

    @Test func environmentDefaults() throws {
        let files = Disk.Files(["/opt/nix/nix.conf": "max-jobs = 3"])
        let c = try NixConfig.load(environment: ["NIX_CONF_DIR": "/opt/nix/", "NIX_REMOTE": "daemon"], host: host, read: files.read)
        #expect(files.asked == ["/opt/nix/nix.conf", "/etc/xdg/nix/nix.conf"])
        #expect(c.settings.builders == "@/opt/nix/machines" && c.settings.store == "daemon" && c.settings.maxJobs == 3)
        let legacy = try NixConfig.load(environment: ["NIX_REMOTE_SYSTEMS": "/etc/a.conf:/etc/b.conf"], host: host, read: { _ in nil })
        #expect(legacy.settings.builders == "@/etc/a.conf\n@/etc/b.conf")
        // A `builders` setting replaces what NIX_REMOTE_SYSTEMS gave.
        let set = try NixConfig.load(environment: ["NIX_REMOTE_SYSTEMS": "/etc/a.conf"], host: host,
                                     overrides: [.builders("ssh://x")], read: { _ in nil })
        #expect(set.settings.builders == "ssh://x")
    }

    @Test func unreadableTopLevelFileIsSkipped() throws {
        let files = Disk.Files(["/etc/nix/nix.conf": "max-jobs = 3"])
        files.failing = ["/etc/nix/nix.conf"]
        let c = try NixConfig.load(environment: ["NIX_USER_CONF_FILES": ""], host: host, read: files.read)
        #expect(c.settings.maxJobs == 1)
        #expect(c.warnings == [.unreadableFile(path: "/etc/nix/nix.conf", reason: "cannot read '/etc/nix/nix.conf'", at: nil)])
    }

    @Test func errorsInLayersNameTheirPlace() {
        let e = #expect(throws: ConfigError.self) {
            try NixConfig.load(environment: ["NIX_CONFIG": "max-jobs = 2\nrequire-sigs = nope"], host: host, read: { _ in nil })
        }
        #expect(e?.location == ConfigLocation(.environment("NIX_CONFIG"), line: 2))
        let cli = #expect(throws: ConfigError.self) {
            try NixConfig.load(environment: [:], host: host, overrides: [.option("max-jobs", "lots")], read: { _ in nil })
        }
        #expect(cli?.description == "the command line: configuration setting 'max-jobs' should be 'auto' or an integer, not 'lots'")
    }

    @Test func configuredMachines() throws {
        let files = Disk.Files([
            "/etc/nix/nix.conf": "builders = @/etc/nix/machines ; ssh-ng://inline aarch64-linux - 2",
            "/etc/nix/machines": "b1 - - 4 2 kvm\nssh-ng://b2?ssh-key=/k x86_64-linux,i686-linux",
        ])
        let settings = try NixConfig.load(environment: ["NIX_USER_CONF_FILES": ""], host: host, read: files.read).settings
        let m = try MachinesFile.configured(by: settings, read: files.read).machines
        #expect(m.map(\.storeUri) == ["ssh://b1", "ssh-ng://b2?ssh-key=/k", "ssh-ng://inline"])
        #expect(m[0].systemTypes == ["x86_64-linux"] && m[0].maxJobs == 4 && m[0].speedFactor == 2)
        #expect(m[1].effectiveSSHKey == "/k" && m[2].maxJobs == 2)
        // The default `@/etc/nix/machines`, absent: no machines, one warning.
        let none = try MachinesFile.configured(by: NixConfig(host: host).settings, read: { _ in nil })
        #expect(none.machines.isEmpty && none.warnings.count == 1)
    }

    @Test func configuredMachinesFromNixRemoteSystems() throws {
        let files = Disk.Files([
            "/etc/a.conf": MachinesRulesTests.seed002,
            "/etc/b.conf": "extra x86_64-linux",
        ])
        let settings = try NixConfig.load(environment: ["NIX_REMOTE_SYSTEMS": "/etc/a.conf:/etc/b.conf"], host: host, read: files.read).settings
        let m = try MachinesFile.configured(by: settings, read: files.read).machines
        #expect(m.count == 5 && m.last?.storeUri == "ssh://extra")
    }
}
