import Foundation

/// Bytes of the regular files under `path` (0 if it does not exist yet).
public func treeSize(_ path: String) -> UInt64 {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return 0 }
    guard isDir.boolValue else { return (try? fm.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0 }
    var total: UInt64 = 0
    for case let name as String in fm.enumerator(atPath: path) ?? NSEnumerator() {
        total += treeSize(path + "/" + name)
    }
    return total
}

