import Foundation

/// What Nix prints to stderr when `-j0` leaves it no way to build: from the line "Failed to
/// find a machine for remote build!" (when there are machines), else from the line "error:
/// unable to start any build", to the end, without colour codes; empty when there is neither.
func refusalText(_ stderr: String) -> String {
    let plain = stderr.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
    let lines = plain.split(separator: "\n", omittingEmptySubsequences: false)
    let start = lines.firstIndex { $0 == "Failed to find a machine for remote build!" }
        ?? lines.firstIndex { $0.hasPrefix("error: unable to start any build") }
    guard let start else { return "" }
    return lines[start...].joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
}
