import Foundation
import NixCore
import Testing
import TestSupport

/// nix.conf syntax and setting semantics, as Nix 2.8's `applyConfig` and `Config::set`.
@Suite struct ConfigTests {
    static let host = NixConfig.Host(system: "x86_64-linux", cores: 6, systemFeatures: ["kvm", "benchmark"],
                                     extraPlatforms: ["i686-linux"])
    static let nix = "/etc/nix/nix.conf"

    func config(_ text: String, files: [String: String] = [:]) throws -> NixConfig {
        var c = NixConfig(host: Self.host)
        let reader = Disk.Files(files)
        try c.apply(text, from: .file(Self.nix), read: reader.read)
        return c
    }

    func error(_ text: String, files: [String: String] = [:]) -> ConfigError? {
        #expect(throws: ConfigError.self) { try config(text, files: files) }
    }

    @Test func assignmentsCommentsAndWhitespace() throws {
        let c = try config("""
            # a comment
              substituters   =   ssh-ng://b1    https://c   # trailing comment
            builders = ssh://mac x86_64-darwin ; ssh://beastie x86_64-freebsd
            secret-key-files =
            \tconnect-timeout\t=\t5\r
            trusted-users = root alice#bob
            """)
        #expect(c.text(of: "substituters") == "ssh-ng://b1 https://c")
        #expect(c.text(of: "builders") == "ssh://mac x86_64-darwin ; ssh://beastie x86_64-freebsd")
        #expect(c.value(of: "secret-key-files") == .list([]))
        #expect(c.value(of: "connect-timeout") == .unsigned(5))
        #expect(c.value(of: "trusted-users") == .list(["root", "alice"]))
        #expect(c.origins["substituters"] == ConfigLocation(.file(Self.nix), line: 2))
        #expect(c.unknownSettings.isEmpty && c.warnings.isEmpty)
    }

    @Test func valuesKeepInnerEqualsAndJoinWords() throws {
        #expect(try config("builders = = x").text(of: "builders") == "= x")
        #expect(try config("builders = a\t\tb").text(of: "builders") == "a b")
    }

    @Test(arguments: ["justone", "a b c", "a=b", "a =b", "include", "include a b", "!include", "= x"])
    func illegalLines(_ line: String) {
        let e = error("# first\n\(line)\n")
        #expect(e?.kind == .illegalLine(line))
        #expect(e?.location == ConfigLocation(.file(Self.nix), line: 2))
        #expect(e?.description == "'/etc/nix/nix.conf', line 2: illegal configuration line '\(line)' (expected 'NAME = VALUE', 'include PATH' or '!include PATH')")
    }

    @Test func noLineContinuation() {
        // A backslash is an ordinary character; the next line stands alone.
        #expect(error("substituters = a \\\n  b")?.kind == .illegalLine("  b"))
    }

    @Test func laterWinsAndExtraAppends() throws {
        let c = try config("""
            substituters = a
            extra-substituters = b c
            extra-substituters = d
            trusted-public-keys = k1
            extra-binary-cache-public-keys = k2
            extra-extra-platforms = aarch64-linux
            extra-system-features = big-parallel
            max-jobs = 2
            max-jobs = 4
            """)
        #expect(c.value(of: "substituters") == .list(["a", "b", "c", "d"]))
        #expect(c.value(of: "trusted-public-keys") == .list(["k1", "k2"]))
        #expect(c.value(of: "extra-platforms") == .list(["aarch64-linux", "i686-linux"]))
        #expect(c.value(of: "system-features") == .list(["benchmark", "big-parallel", "kvm"]))
        #expect(c.value(of: "max-jobs") == .unsigned(4))
        // extra- on an unset list appends to the default.
        #expect(try config("extra-substituters = ssh-ng://b").value(of: "substituters") == .list(["https://cache.nixos.org/", "ssh-ng://b"]))
        // A plain assignment after extra- replaces everything.
        #expect(try config("extra-substituters = x\nsubstituters = y").value(of: "substituters") == .list(["y"]))
    }

    @Test func aliasesAndUnknownSettings() throws {
        let c = try config("binary-caches = a\nbuild-max-jobs = 3\nfoo = bar\nextra-builders = x\nextra-foo = y\nfoo = baz")
        #expect(c.value(of: "substituters") == .list(["a"]))
        #expect(c.value(of: "max-jobs") == .unsigned(3))
        #expect(c.unknownSettings.map(\.name) == ["foo", "extra-builders", "extra-foo", "foo"])
        #expect(c.unknownSettings.last?.value == "baz")
        #expect(c.warnings.first?.description == "'/etc/nix/nix.conf', line 3: unknown setting 'foo'")
        #expect(c.text(of: "builders") == "@/etc/nix/machines")
        #expect(NixConfig.isKnownSetting("sandbox") && NixConfig.isKnownSetting("build-use-sandbox") && !NixConfig.isKnownSetting("foo"))
    }

    @Test func booleansAsNix() throws {
        for (text, value) in [("true", true), ("yes", true), ("1", true), ("false", false), ("no", false), ("0", false)] {
            #expect(try config("require-sigs = \(text)").settings.requireSigs == value)
        }
        for bad in ["maybe", "True", "on", ""] {
            let e = error("\nrequire-sigs = \(bad)")
            #expect(e?.kind == .invalidBoolean(setting: "require-sigs", value: bad))
            #expect(e?.location.line == 2)
        }
        #expect(error("builders-use-substitutes = TRUE")?.description
            == "'/etc/nix/nix.conf', line 1: Boolean setting 'builders-use-substitutes' has invalid value 'TRUE' (expected 'true' or 'false')")
    }

    @Test func integersAsNix() throws {
        #expect(try config("narinfo-cache-negative-ttl = +7").settings.narinfoCacheNegativeTTL == 7)
        #expect(try config("narinfo-cache-positive-ttl = 4294967295").settings.narinfoCachePositiveTTL == UInt32.max)
        #expect(error("narinfo-cache-positive-ttl = 4294967296")?.kind == .invalidInteger(setting: "narinfo-cache-positive-ttl", value: "4294967296"))
        #expect(error("narinfo-cache-negative-ttl = -1")?.kind == .invalidInteger(setting: "narinfo-cache-negative-ttl", value: "-1"))
        #expect(error("connect-timeout = 1s")?.kind == .invalidInteger(setting: "connect-timeout", value: "1s"))
        #expect(try config("timeout = -1").value(of: "timeout") == .signed(-1))
        #expect(try config("max-jobs = auto").settings.maxJobs == 6)
        #expect(try config("max-jobs = 0").settings.maxJobs == 0)
        #expect(error("max-jobs = many")?.kind == .invalidMaxJobs(setting: "max-jobs", value: "many"))
        #expect(try config("sandbox = relaxed").text(of: "sandbox") == "relaxed")
        #expect(error("sandbox = maybe")?.kind == .invalidSandboxMode(setting: "sandbox", value: "maybe"))
        #expect(error("build-hook = relative/hook")?.kind == .relativePath(setting: "build-hook", value: "relative/hook"))
        #expect(try config("build-hook = /a/./b/../hook").text(of: "build-hook") == "/a/hook")
    }

    @Test func experimentalFeaturesAndMaps() throws {
        let c = try config("experimental-features = nix-command bogus\nextra-experimental-features = flakes\naccess-tokens = github.com=abc x y=1\nextra-access-tokens = y=2 z=3")
        #expect(c.value(of: "experimental-features") == .list(["flakes", "nix-command"]))
        #expect(c.warnings == [.unknownExperimentalFeature("bogus", at: ConfigLocation(.file(Self.nix), line: 1))])
        #expect(c.text(of: "access-tokens") == "github.com=abc y=1 z=3")
    }

    @Test func includes() throws {
        let files = [
            "/etc/nix/extra.conf": "extra-substituters = b\ninclude sub/more.conf\n",
            "/etc/nix/sub/more.conf": "max-jobs = 7\n!include ../../missing.conf\n",
        ]
        let c = try config("substituters = a\ninclude extra.conf\n!include /nope.conf\nrequire-sigs = false", files: files)
        #expect(c.value(of: "substituters") == .list(["a", "b"]))
        #expect(c.origins["max-jobs"] == ConfigLocation(.file("/etc/nix/sub/more.conf"), line: 1))
        #expect(c.settings.requireSigs == false && c.settings.maxJobs == 7)

        let missing = error("\n\ninclude ./gone.conf")
        #expect(missing?.kind == .includeNotFound(path: "/etc/nix/gone.conf"))
        #expect(missing?.location.line == 3)

        let nested = error("include a.conf", files: ["/etc/nix/a.conf": "x = = y\nrequire-sigs = sure"])
        #expect(nested?.location == ConfigLocation(.file("/etc/nix/a.conf"), line: 2))
        #expect(nested?.description == """
            '/etc/nix/a.conf', line 2: Boolean setting 'require-sigs' has invalid value 'sure' (expected 'true' or 'false')
              included from '/etc/nix/nix.conf', line 1
            """)
    }

    @Test func includeCycleDepthAndUnreadable() throws {
        let cycle = error("include a.conf", files: ["/etc/nix/a.conf": "include nix.conf"])
        #expect(cycle?.kind == .includeCycle(path: "/etc/nix/nix.conf"))
        var deep: [String: String] = [:]
        for i in 0..<40 { deep["/etc/nix/\(i).conf"] = "include \(i + 1).conf" }
        #expect(error("include 0.conf", files: deep)?.kind == .includeTooDeep(path: "/etc/nix/15.conf", limit: 16))
        // Nix skips a file that exists but cannot be read.
        var c = NixConfig(host: Self.host)
        let files = Disk.Files(["/etc/nix/locked.conf": "max-jobs = 9"])
        files.failing = ["/etc/nix/locked.conf"]
        try c.apply("include locked.conf\nmax-jobs = 2", from: .file(Self.nix), read: files.read)
        #expect(c.settings.maxJobs == 2)
        #expect(c.warnings.count == 1)
    }

    @Test func nixConfigEnvironmentIncludesMustBeAbsolute() throws {
        var c = NixConfig(host: Self.host)
        let files = Disk.Files(["/abs.conf": "max-jobs = 5"])
        try c.apply("include /abs.conf", from: .environment("NIX_CONFIG"), read: files.read)
        #expect(c.settings.maxJobs == 5)
        let e = #expect(throws: ConfigError.self) { try c.apply("\ninclude rel.conf", from: .environment("NIX_CONFIG"), read: files.read) }
        #expect(e?.kind == .notAbsolutePath("./rel.conf"))
        #expect(e?.description.hasPrefix("$NIX_CONFIG, line 2: not an absolute path: './rel.conf'") == true)
    }

    @Test func crlfAndTabs() throws {
        let c = try config("substituters = a b\r\nmax-jobs\t=\t3\r\n")
        #expect(c.value(of: "substituters") == .list(["a", "b"]) && c.settings.maxJobs == 3)
    }

    @Test func limits() {
        var limits = NixConfig.Limits()
        limits.maxTextBytes = 8
        var c = NixConfig(host: Self.host)
        #expect(throws: ConfigError.self) { try c.apply("max-jobs = 3", from: .file("/x"), limits: limits, read: { _ in nil }) }
    }
}
