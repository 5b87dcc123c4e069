import Foundation
import NixCore
import Testing
import TestSupport

/// Our nix.conf reading against `nix show-config --json` of Nix 2.8 over the same files,
/// environment and command line.
@Suite(.tags(.realNix), .enabled(if: TestSupport.hasNix, "needs the nix CLI (nix-bin)"))
struct ConfigRealNixTests {
    /// A JSON value, keeping booleans apart from numbers (JSONSerialization does not).
    enum JSONValue: Decodable, Equatable {
        case bool(Bool), number(String), string(String), array([JSONValue]), object([String: JSONValue])

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let n = try? c.decode(UInt64.self) { self = .number(String(n)) }
            else if let n = try? c.decode(Int64.self) { self = .number(String(n)) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
            else { self = .object(try c.decode([String: JSONValue].self)) }
        }

        /// Printed as `show-config` prints it.
        var rendered: String {
            switch self {
            case let .bool(b): b ? "true" : "false"
            case let .number(n): n
            case let .string(s): s
            case let .array(a): a.map(\.rendered).joined(separator: " ")
            case let .object(d): d.keys.sorted().map { "\($0)=\(d[$0]!.rendered)" }.joined(separator: " ")
            }
        }
    }

    struct SettingInfo: Decodable {
        var value: JSONValue
        var aliases: [String]
    }

    /// `nix show-config --json` under `env`, plus its stderr.
    static func showConfig(_ env: [String: String], _ args: [String] = []) throws -> (json: [String: SettingInfo]?, stderr: String) {
        // The environment is the test's whole configuration: a NIX_USER_CONF_FILES inherited
        // from the runner would replace the XDG files under test.
        let out = try TestSupport.run(["env", "-u", "NIX_USER_CONF_FILES",
                                       "nix", "--extra-experimental-features", "nix-command", "show-config", "--json"] + args,
                                      environment: env, check: false)
        let json = out.status == 0 ? try JSONDecoder().decode([String: SettingInfo].self, from: out.stdout) : nil
        return (json, out.stderr)
    }

    /// Nix's own defaults for the host facts (system, cores, features, platforms).
    static func host(_ dir: URL) throws -> NixConfig.Host {
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let json = try #require(try showConfig(["NIX_CONF_DIR": empty.path, "NIX_USER_CONF_FILES": "", "NIX_CONFIG": ""]).json)
        func words(_ n: String) -> Set<String> { Set(json[n]?.value.rendered.split(separator: " ").map(String.init) ?? []) }
        return NixConfig.Host(system: try #require(json["system"]?.value.rendered),
                              cores: try #require(UInt32(json["cores"]?.value.rendered ?? "")),
                              systemFeatures: words("system-features"),
                              extraPlatforms: words("extra-platforms"))
    }

    static func environment(_ dir: URL, nixConfig: String) -> [String: String] {
        [
            "NIX_CONF_DIR": dir.appendingPathComponent("etc").path,
            "HOME": dir.appendingPathComponent("home").path,
            "XDG_CONFIG_HOME": dir.appendingPathComponent("cfg").path,
            "XDG_CONFIG_DIRS": dir.appendingPathComponent("xdg1").path + ":" + dir.appendingPathComponent("xdg2").path,
            "NIX_CONFIG": nixConfig,
        ]
    }

    @Test func layeredConfigMatchesNix() throws {
        let dir = try TestSupport.temporaryDirectory("nb-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let host = try Self.host(dir)
        let p = dir.path
        try Disk.write("""
            # system file
            substituters = ssh-ng://b1 ssh-ng://b2   # builders as substituters
            trusted-public-keys = b1:AAAA
            secret-key-files = /etc/nix/key.pem
            narinfo-cache-negative-ttl = 60
            builders-use-substitutes = yes
            sandbox = relaxed
            include conf.d/more.conf
            !include conf.d/absent.conf
            max-jobs = 3
            unknown-one = x
            timeout = -5
            access-tokens = github.com=t1 junk gitlab.com=t2
            """, to: dir.appendingPathComponent("etc/nix.conf"))
        try Disk.write("extra-trusted-public-keys = b2:BBBB\nextra-binary-caches = ssh-ng://b3\nsystem-features = kvm big-parallel\nextra-access-tokens = github.com=ignored x.org=t3\n",
                       to: dir.appendingPathComponent("etc/conf.d/more.conf"))
        try Disk.write("max-jobs = 5\nextra-substituters = xdg2\nconnect-timeout = 2\nextra-builders = nope\n", to: dir.appendingPathComponent("xdg2/nix/nix.conf"))
        try Disk.write("max-jobs = 6\nextra-substituters = xdg1\nrequire-sigs = 0\n", to: dir.appendingPathComponent("xdg1/nix/nix.conf"))
        try Disk.write("extra-substituters = home\nextra-extra-platforms = riscv64-linux\nnarinfo-cache-positive-ttl = +100\n", to: dir.appendingPathComponent("cfg/nix/nix.conf"))
        try Disk.write("builders = @\(p)/machines\n", to: dir.appendingPathComponent("inc.conf"))
        let env = Self.environment(dir, nixConfig: "extra-substituters = env\ninclude \(p)/inc.conf\nunknown-two = y\n")
        let cli = [NixConfig.Override.option("extra-trusted-public-keys", "cli:CCCC"), .maxJobs("auto"), .flag("builders-use-substitutes", false)]

        let ours = try NixConfig.load(environment: env, host: host, overrides: cli, read: Disk.reader)
        let (json, stderr) = try Self.showConfig(env, ["--option", "extra-trusted-public-keys", "cli:CCCC", "--max-jobs", "auto",
                                                       "--no-builders-use-substitutes"])
        let nix = try #require(json, "nix show-config failed: \(stderr)")
        var compared = 0
        for (name, info) in nix where name != "experimental-features" {
            guard let ourText = ours.text(of: name) else { continue }
            #expect(ourText == info.value.rendered, "setting \(name)")
            compared += 1
        }
        #expect(compared >= 25)
        let s = ours.settings
        #expect(s.substituters == ["ssh-ng://b1", "ssh-ng://b2", "ssh-ng://b3", "xdg2", "xdg1", "home", "env"])
        #expect(s.trustedPublicKeys == ["b1:AAAA", "b2:BBBB", "cli:CCCC"])
        #expect(s.maxJobs == host.cores && s.requireSigs == false && s.buildersUseSubstitutes == false)
        #expect(s.builders == "@\(p)/machines")
        // The same unknown settings Nix warns about.
        let warned = Set(stderr.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("warning: unknown setting '") else { return nil }
            return String(line.dropFirst("warning: unknown setting '".count).dropLast())
        })
        #expect(warned == Set(ours.unknownSettings.map(\.name)))
        #expect(warned == ["unknown-one", "unknown-two", "extra-builders"])
    }

    @Test func dedicatedFlagsAndRemoteSystems() throws {
        let dir = try TestSupport.temporaryDirectory("nb-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let host = try Self.host(dir)
        var env = Self.environment(dir, nixConfig: "")
        env["NIX_REMOTE_SYSTEMS"] = "/etc/legacy.conf"
        let ours = try NixConfig.load(environment: env, host: host, read: Disk.reader)
        let nix = try #require(try Self.showConfig(env).json)
        #expect(nix["builders"]?.value.rendered == ours.settings.builders)
        #expect(ours.settings.builders == "@/etc/legacy.conf")

        let flags = try NixConfig.load(environment: Self.environment(dir, nixConfig: ""), host: host,
                                       overrides: [.builders("ssh://a x86_64-linux ; ssh://b"), .flag("require-sigs", false), .maxJobs("0")],
                                       read: Disk.reader)
        let withFlags = try #require(try Self.showConfig(Self.environment(dir, nixConfig: ""),
                                                         ["--builders", "ssh://a x86_64-linux ; ssh://b", "--no-require-sigs", "-j", "0"]).json)
        for name in ["builders", "require-sigs", "max-jobs"] {
            #expect(flags.text(of: name) == withFlags[name]?.value.rendered, "\(name)")
        }
    }

    /// The phrase of Nix 2.8's message for each of our errors.
    static func nixPhrase(_ e: ConfigError) -> String {
        switch e.kind {
        case let .illegalLine(l): "illegal configuration line '\(l)'"
        case let .invalidBoolean(n, v): "Boolean setting '\(n)' has invalid value '\(v)'"
        case let .invalidInteger(n, v): "setting '\(n)' has invalid value '\(v)'"
        case let .invalidMaxJobs(n, _): "configuration setting '\(n)' should be 'auto' or an integer"
        case let .invalidSandboxMode(n, v): "option '\(n)' has invalid value '\(v)'"
        case let .includeNotFound(path): "file '\(path)' included from"
        default: "?"
        }
    }

    @Test(arguments: [
        "justone", "a b c", "a=b", "include", "include a b", "require-sigs = maybe", "require-sigs = TRUE",
        "max-jobs = x", "narinfo-cache-negative-ttl = -1", "narinfo-cache-positive-ttl = 4294967296",
        "connect-timeout = 3s", "sandbox = sometimes", "include nothere.conf", "builders-use-substitutes =",
    ])
    func sameRefusalsAsNix(_ line: String) throws {
        let dir = try TestSupport.temporaryDirectory("nb-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let host = try Self.host(dir)
        try Disk.write("# ok\nmax-jobs = 2\n\(line)\n", to: dir.appendingPathComponent("etc/nix.conf"))
        let env = Self.environment(dir, nixConfig: "")
        let (json, stderr) = try Self.showConfig(env)
        #expect(json == nil, "Nix accepted '\(line)'")
        let ours = #expect(throws: ConfigError.self) { try NixConfig.load(environment: env, host: host, read: Disk.reader) }
        #expect(ours?.location.line == 3)
        if let ours { #expect(stderr.contains(Self.nixPhrase(ours)), "\(stderr) vs \(ours)") }
    }

    /// Every setting of Nix 2.8 is known to us, under the same aliases, and `extra-NAME` works
    /// exactly for the list settings.
    @Test func catalogMatchesNix() throws {
        let dir = try TestSupport.temporaryDirectory("nb-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let host = try Self.host(dir)
        let nix = try #require(try Self.showConfig(["NIX_CONF_DIR": dir.path, "NIX_USER_CONF_FILES": "", "NIX_CONFIG": ""]).json)
        #expect(nix.count >= 90)
        for (name, info) in nix {
            #expect(NixConfig.isKnownSetting(name), "\(name)")
            for alias in info.aliases { #expect(NixConfig.isKnownSetting(alias), "\(alias)") }
            var c = NixConfig(host: host)
            try c.set("extra-" + name, to: "v", at: ConfigLocation(.commandLine))
            switch info.value {
            case .array, .object:
                #expect(c.unknownSettings.isEmpty, "extra-\(name)")
            case .bool:
                #expect(!c.unknownSettings.isEmpty, "extra-\(name)")
                #expect(throws: ConfigError.self) { try c.set(name, to: "maybe", at: ConfigLocation(.commandLine)) }
            case .number:
                #expect(!c.unknownSettings.isEmpty, "extra-\(name)")
                #expect(throws: ConfigError.self) { try c.set(name, to: "x", at: ConfigLocation(.commandLine)) }
            case .string:
                #expect(!c.unknownSettings.isEmpty, "extra-\(name)")
            }
        }
    }

    @Test func nixConfigRelativeIncludeRefusedLikeNix() throws {
        let dir = try TestSupport.temporaryDirectory("nb-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let host = try Self.host(dir)
        for line in ["include rel.conf", "!include rel.conf"] {
            let env = Self.environment(dir, nixConfig: "max-jobs = 2\n\(line)")
            let (json, stderr) = try Self.showConfig(env)
            #expect(json == nil && stderr.contains("not an absolute path: './rel.conf'"))
            let ours = #expect(throws: ConfigError.self) { try NixConfig.load(environment: env, host: host, read: Disk.reader) }
            #expect(ours?.kind == .notAbsolutePath("./rel.conf") && ours?.location == ConfigLocation(.environment("NIX_CONFIG"), line: 2))
        }
    }

    /// This machine's own configuration (Debian's /etc/nix/nix.conf and whatever the
    /// environment adds) reads the same for us as for Nix.
    @Test func thisMachinesConfigMatchesNix() throws {
        let dir = try TestSupport.temporaryDirectory("nb-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let host = try Self.host(dir)
        let env = ProcessInfo.processInfo.environment
        let ours = try NixConfig.load(environment: env, host: host, read: Disk.reader)
        let nix = try #require(try Self.showConfig([:]).json)
        var compared = 0
        for (name, info) in nix where name != "experimental-features" {
            guard let text = ours.text(of: name) else { continue }
            #expect(text == info.value.rendered, "setting \(name)")
            compared += 1
        }
        #expect(compared >= 20)
    }
}
