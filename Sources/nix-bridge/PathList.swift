import ArgumentParser
import Foundation

/// A command whose trailing arguments are a list of paths of any length (store paths,
/// `DRV^out`, files). ArgumentParser spends time quadratic in the length of a positional
/// array (10,000 paths: seconds), so `PathList` hands it a short command line and fills the
/// list in afterwards; with `--stdin` the paths also come from standard input, as Nix's.
protocol PathListCommand: ParsableCommand {
    /// The `@Argument` array that takes the paths (the command's only positional argument).
    var pathArguments: [String] { get set }
    /// Whether `--stdin` was given.
    var readsStandardInput: Bool { get }
    /// The argument's name in usage errors, as ArgumentParser prints it (`<paths> ...`).
    static var pathArgumentName: String { get }
    /// Whether no paths at all is allowed (`key sign --all`).
    var allowsNoPaths: Bool { get }
}

extension PathListCommand {
    var readsStandardInput: Bool { false }
    var allowsNoPaths: Bool { false }
}

/// A path-list command's line with every run of two or more consecutive values after the
/// subcommand names shortened to its first value and a marker standing for the rest. Options
/// here take at most one value each (`--option NAME VALUE` is one `NAME=VALUE` by then), so in
/// a run only the first value can be an option's; the rest are positional, and the command's
/// only positional argument is its path list, where a marker stands exactly where its run
/// stood. Everything after `--` is positional, so it becomes one marker.
struct PathList {
    /// The shortened command line, for ArgumentParser.
    private(set) var arguments: [String] = []
    /// What each marker stands for, by its number.
    private var runs: [ArraySlice<String>] = []
    /// The command line with each run cut to its first two values and no marker: what a
    /// usage error is worded from, so that it names real arguments.
    private(set) var withoutRuns: [String] = []

    /// Markers start with NUL, which no argument from a C `argv` can hold.
    private static let markerPrefix = "\u{0}nix-bridge-paths-"

    /// `all` after its first `commandWords` (the subcommand names) shortened.
    init(_ all: [String], commandWords: Int) {
        arguments = Array(all.prefix(commandWords))
        withoutRuns = arguments
        var i = arguments.count
        while i < all.count {
            let a = all[i]
            if a == "--" {
                arguments.append(a)
                withoutRuns += all[i...].prefix(3)
                if i + 1 < all.count { arguments.append(marker(for: all[(i + 1)...])) }
                break
            }
            guard Self.isValue(a) else {
                arguments.append(a)
                withoutRuns.append(a)
                i += 1
                continue
            }
            var end = i
            while end < all.count, Self.isValue(all[end]) { end += 1 }
            arguments.append(a)
            if i + 1 < end { arguments.append(marker(for: all[(i + 1)..<end])) }
            withoutRuns += all[i..<min(end, i + 2)]
            i = end
        }
    }

    /// Whether any run was shortened.
    var isShortened: Bool { !runs.isEmpty }

    /// `values` with each marker replaced by the arguments it stands for.
    func expand(_ values: [String]) -> [String] {
        guard isShortened else { return values }
        var out: [String] = []
        out.reserveCapacity(values.count + runs.reduce(0) { $0 + $1.count })
        for v in values {
            if let n = number(of: v) { out += runs[n] } else { out.append(v) }
        }
        return out
    }

    private mutating func marker(for run: ArraySlice<String>) -> String {
        runs.append(run)
        return Self.markerPrefix + String(runs.count - 1)
    }

    private func number(of value: String) -> Int? {
        guard value.hasPrefix(Self.markerPrefix),
              let n = Int(value.dropFirst(Self.markerPrefix.count)), runs.indices.contains(n) else { return nil }
        return n
    }

    /// ArgumentParser's notion of a value: anything but `-x`, `--x` (a lone `-` is a value).
    private static func isValue(_ a: String) -> Bool {
        a == "-" || !a.hasPrefix("-")
    }
}

extension PathList {
    /// Parses `arguments` into a command as `parseAsRoot` does, in time linear in the number
    /// of paths for a `PathListCommand`, and adds the paths read from standard input for
    /// `--stdin`. A usage error is ArgumentParser's own, worded from the real arguments.
    static func parse(_ arguments: [String], as root: any ParsableCommand.Type) throws -> any ParsableCommand {
        let (type, words) = subcommand(of: root, named: arguments)
        guard type is any PathListCommand.Type else { return try root.parseAsRoot(arguments) }
        let list = PathList(arguments, commandWords: words)
        let command: any ParsableCommand
        do {
            command = try root.parseAsRoot(list.arguments)
        } catch {
            _ = try root.parseAsRoot(list.withoutRuns)
            throw error
        }
        guard var c = command as? any PathListCommand else { return command }
        var paths = list.expand(c.pathArguments)
        if c.readsStandardInput { paths += StandardInputWords.read() }
        if paths.isEmpty, !c.allowsNoPaths {
            throw ValidationError("Missing expected argument '\(Swift.type(of: c).pathArgumentName)' (or --stdin)")
        }
        c.pathArguments = paths
        return c
    }

    /// The subcommand the leading words of `arguments` name, and how many words that took.
    private static func subcommand(of root: any ParsableCommand.Type, named arguments: [String]) -> (any ParsableCommand.Type, Int) {
        var current = root, words = 0
        while words < arguments.count,
              let next = current.configuration.subcommands.first(where: { $0.configuration.commandName == arguments[words] }) {
            current = next
            words += 1
        }
        return (current, words)
    }
}

/// `--stdin`: the words of standard input, as Nix reads installables (`std::cin >> word`:
/// separated by any white space, so one path per line works).
enum StandardInputWords {
    static func read() -> [String] {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        var words: [String] = []
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start: Int? = nil
            for i in 0...bytes.count {
                let isSpace = i == bytes.count || bytes[i] == 0x20 || (bytes[i] >= 0x09 && bytes[i] <= 0x0d)
                if isSpace {
                    if let s = start {
                        words.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[s..<i]), as: UTF8.self))
                        start = nil
                    }
                } else if start == nil {
                    start = i
                }
            }
        }
        return words
    }
}
