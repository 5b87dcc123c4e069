import Glibc
import ArgumentParser

/// A line on stderr.
func printError(_ text: String) {
    var t = text
    t += "\n"
    t.withUTF8 { b in _ = Glibc.write(2, b.baseAddress, b.count) }
}

/// Failures of the CLI itself (the libraries' typed errors are printed as they are).
enum CLIError: Error, CustomStringConvertible {
    case file(path: String, operation: String, reason: String)
    case tooLarge(path: String, limit: Int)
    case narInfo(file: String, Error)
    case untrusted(failed: Int, total: Int)
    case noStores
    /// A failure already worded for the user.
    case failed(String)

    var description: String {
        switch self {
        case let .file(path, op, reason): return "cannot \(op) '\(path)': \(reason)"
        case let .tooLarge(path, limit): return "file '\(path)' is larger than \(limit) bytes"
        case let .narInfo(file, e): return "NAR info file '\(file)': \(e)"
        case let .untrusted(failed, total): return "\(failed) of \(total) NAR info files are not trusted"
        case .noStores: return "no stores to ask: configure builders (nix.conf 'builders', --builders) or --substituters"
        case let .failed(text): return text
        }
    }
}
