/// One remote build machine, as a line of Nix's machines file describes it (Nix's `Machine`).
public struct Machine: Hashable, Sendable {
    /// The store URI, normalised as Nix does: a bare host such as `nix@mac` becomes `ssh://nix@mac`.
    public var storeUri: String
    /// The systems the machine builds for, in file order (`x86_64-linux`, ...).
    public var systemTypes: [String]
    /// The SSH identity file (column 3); nil means SSH's usual identities.
    public var sshKey: String?
    /// Builds Nix runs at once on the machine (column 4, default 1; 0 disables the machine).
    public var maxJobs: UInt32
    /// Relative speed used to prefer machines (column 5, default 1; 0 means 1 as in Nix).
    public var speedFactor: Double
    /// Features the machine offers (column 6).
    public var supportedFeatures: Set<String>
    /// Features a derivation must ask for to be built here (column 7); they count as supported.
    public var mandatoryFeatures: Set<String>
    /// The pinned host key (column 8), if any.
    public var sshPublicHostKey: SSHPublicHostKey?

    public init(storeUri: String, systemTypes: [String], sshKey: String? = nil, maxJobs: UInt32 = 1,
                speedFactor: Double = 1, supportedFeatures: Set<String> = [], mandatoryFeatures: Set<String> = [],
                sshPublicHostKey: SSHPublicHostKey? = nil) {
        self.storeUri = Machine.normalizedStoreUri(storeUri)
        self.systemTypes = systemTypes
        self.sshKey = sshKey
        self.maxJobs = maxJobs
        self.speedFactor = speedFactor == 0 ? 1 : speedFactor
        self.supportedFeatures = supportedFeatures
        self.mandatoryFeatures = mandatoryFeatures
        self.sshPublicHostKey = sshPublicHostKey
    }

    /// Nix's backwards-compatibility rule: a schemeless URI that is not a path and not one of
    /// the store words `auto`, `daemon`, `local` (alone or with `?params`) gets `ssh://`.
    public static func normalizedStoreUri(_ uri: String) -> String {
        if uri.contains("://") || uri.contains("/") || uri.hasPrefix("?") { return uri }
        for word in ["auto", "daemon", "local"] where uri == word || uri.hasPrefix(word + "?") {
            return uri
        }
        return "ssh://" + uri
    }

    /// True when the machine builds for `system`; `builtin` derivations run anywhere.
    public func systemSupported(_ system: String) -> Bool {
        system == "builtin" || systemTypes.contains(system)
    }

    /// True when every feature is supported or mandatory here.
    public func allSupported(_ features: Set<String>) -> Bool {
        features.allSatisfy { supportedFeatures.contains($0) || mandatoryFeatures.contains($0) }
    }

    /// True when `features` includes all of this machine's mandatory features.
    public func mandatoryMet(_ features: Set<String>) -> Bool {
        mandatoryFeatures.isSubset(of: features)
    }

    /// The URI's scheme (`ssh`, `ssh-ng`, ...), or nil for store words and paths.
    public var scheme: String? { MachineURIParts(storeUri).scheme }

    /// The `user@host[:port]` part of an `ssh://`/`ssh-ng://` URI, without parameters.
    public var authority: String? { MachineURIParts(storeUri).authority }

    /// The parameters Nix passes when it opens this machine's store (`Machine::openStore`):
    /// the URI's query, overridden by the machine's own columns (Nix inserts the query into the
    /// column-derived parameters without replacing them).
    public var storeParameters: [String: String] {
        let uri = MachineURIParts(storeUri)
        var params: [String: String] = [:]
        if uri.scheme == "ssh" {
            params["max-connections"] = "1"
            params["log-fd"] = "4"
        }
        if uri.scheme == "ssh" || uri.scheme == "ssh-ng" {
            if let sshKey { params["ssh-key"] = sshKey }
            if let sshPublicHostKey { params["base64-ssh-public-host-key"] = sshPublicHostKey.base64 }
        }
        params["system-features"] = (supportedFeatures.sorted() + mandatoryFeatures.sorted()).joined(separator: " ")
        return params.merging(uri.query) { own, _ in own }
    }

    /// The identity file SSH should use: column 3, else the URI's `ssh-key=` parameter.
    public var effectiveSSHKey: String? { storeParameters["ssh-key"] }

    /// The machine as one machines-file line (`-` for defaults, trailing defaults dropped);
    /// parsing it gives this machine back (given a non-empty `systemTypes`).
    public var machinesFileLine: String {
        func list(_ items: [String]) -> String { items.isEmpty ? "-" : items.joined(separator: ",") }
        let speed = speedFactor == speedFactor.rounded() && speedFactor < 1e15
            ? String(Int64(speedFactor)) : String(speedFactor)
        var columns = [storeUri, list(systemTypes), sshKey ?? "-", String(maxJobs), speed,
                       list(supportedFeatures.sorted()), list(mandatoryFeatures.sorted()), sshPublicHostKey?.base64 ?? "-"]
        while columns.count > 1, columns.last == "-" { columns.removeLast() }
        return columns.joined(separator: " ")
    }
}

/// A store URI split as Nix's `parseURL` does for the parts machines need.
struct MachineURIParts {
    var scheme: String?
    var authority: String?
    var path: String = ""
    var query: [String: String] = [:]

    init(_ uri: String) {
        var rest = Substring(uri)
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = MachineURIParts.percentDecoded(kv[0])
                // Nix keeps the first occurrence of a repeated parameter.
                if query[key] == nil { query[key] = kv.count > 1 ? MachineURIParts.percentDecoded(kv[1]) : "" }
            }
            rest = rest[..<q]
        }
        let chars = Array(rest.utf8)
        guard let sep = (0..<max(0, chars.count - 2)).first(where: {
            chars[$0] == UInt8(ascii: ":") && chars[$0 + 1] == UInt8(ascii: "/") && chars[$0 + 2] == UInt8(ascii: "/")
        }) else { path = String(rest); return }
        scheme = String(decoding: chars[..<sep], as: UTF8.self)
        let afterScheme = Substring(String(decoding: chars[(sep + 3)...], as: UTF8.self))
        if let slash = afterScheme.firstIndex(of: "/") {
            authority = String(afterScheme[..<slash])
            path = String(afterScheme[slash...])
        } else {
            authority = String(afterScheme)
        }
    }

    static func percentDecoded(_ s: Substring) -> String {
        var out: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "%"), i + 2 < u.count,
               let v = UInt8(String(decoding: u[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 3
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
