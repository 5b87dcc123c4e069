import Foundation

/// The one way the CLI prints JSON (`--json`): as Nix does, compact, keys sorted, `/` not
/// escaped.
enum JSONOutput {
    static func array(_ objects: [[String: Any]]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
