import Foundation

/// The one way the CLI prints JSON (`--json`): as Nix does, compact, keys sorted, `/` not
/// escaped.
enum JSONOutput {
    static func array(_ objects: [[String: Any]]) -> String {
        render(objects, empty: "[]")
    }

    static func object(_ object: [String: Any]) -> String {
        render(object, empty: "{}")
    }

    private static func render(_ value: Any, empty: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data(empty.utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
