/// The columns of one machine entry, turned into a `Machine` with Nix's defaults and checks.
struct MachineFields {
    /// Column texts with their 1-based character columns in the line.
    let tokens: [(text: String, column: Int)]
    let location: MachinesLocation
    let syntax: MachinesFile.Syntax
    let localSystem: String

    init(entry: MachineEntry, syntax: MachinesFile.Syntax, localSystem: String) {
        var tokens: [(String, Int)] = []
        var i = 0
        let s = entry.text
        let base = entry.location.column ?? 1
        while i < s.count {
            while i < s.count, s[i].isNixWhitespace { i += 1 }
            let start = i
            while i < s.count, !s[i].isNixWhitespace { i += 1 }
            if i > start { tokens.append((String(String.UnicodeScalarView(s[start..<i])), base + start)) }
        }
        self.tokens = tokens
        self.location = entry.location
        self.syntax = syntax
        self.localSystem = localSystem
    }

    /// Column count of the grammar: remote-systems.conf has no host key column.
    private var columnCount: Int { syntax == .remoteSystemsConf ? 7 : 8 }

    /// The column's text unless it is absent, empty or `-` (Nix's `isSet`).
    private func value(_ index: Int) -> String? {
        guard index < tokens.count, index < columnCount else { return nil }
        let t = tokens[index].text
        return t.isEmpty || t == "-" ? nil : t
    }

    private func place(_ index: Int) -> MachinesLocation {
        var l = location
        if index < tokens.count { l.column = tokens[index].column }
        return l
    }

    /// The machine, and the columns past the last one (ignored, as Nix does).
    func machine() throws(MachinesError) -> (Machine, [String]) {
        guard let uri = value(0) else { throw MachinesError(.missingStoreUri, at: place(0)) }
        if syntax == .remoteSystemsConf, value(1) == nil {
            throw MachinesError(.missingSystems, at: place(1))
        }
        var maxJobs: UInt32 = 1
        if let text = value(3) {
            guard let n = NixNumber.unsigned(text, max: UInt64(UInt32.max)) else {
                throw MachinesError(.invalidMaxJobs(text), at: place(3))
            }
            maxJobs = UInt32(n)
        }
        var speedFactor = 1.0
        if let text = value(4) {
            speedFactor = try parseSpeedFactor(text, at: place(4))
        }
        var hostKey: SSHPublicHostKey?
        if let text = value(7) {
            do {
                hostKey = try SSHPublicHostKey(base64: text)
            } catch {
                throw MachinesError(.invalidHostKey(text, error), at: place(7))
            }
        }
        let machine = Machine(
            storeUri: uri,
            systemTypes: value(1).map(MachineFields.commaList) ?? [localSystem],
            sshKey: value(2),
            maxJobs: maxJobs,
            speedFactor: speedFactor,
            supportedFeatures: Set(value(5).map(MachineFields.commaList) ?? []),
            mandatoryFeatures: Set(value(6).map(MachineFields.commaList) ?? []),
            sshPublicHostKey: hostKey)
        let extra = tokens.count > columnCount ? tokens[columnCount...].map(\.text) : []
        return (machine, extra)
    }

    private func parseSpeedFactor(_ text: String, at place: MachinesLocation) throws(MachinesError) -> Double {
        switch syntax {
        case .nix28, .remoteSystemsConf:
            // Nix 2.8 reads an `unsigned int` and raises 0 to 1.
            guard let n = NixNumber.unsigned(text, max: UInt64(UInt32.max)) else {
                throw MachinesError(.invalidSpeedFactor(text, floats: false), at: place)
            }
            return Double(max(1, n))
        case .current:
            guard let d = NixNumber.decimal(text) else {
                throw MachinesError(.invalidSpeedFactor(text, floats: true), at: place)
            }
            guard d >= 0 else { throw MachinesError(.negativeSpeedFactor(text), at: place) }
            return d == 0 ? 1 : d
        }
    }

    /// A comma-separated column, empty items dropped (order and repeats kept, as Nix 2.8).
    static func commaList(_ s: String) -> [String] {
        s.split(separator: ",").map(String.init)
    }
}
