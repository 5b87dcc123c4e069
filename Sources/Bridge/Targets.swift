import Foundation
import NixCore

/// Turns what a user names (store paths, `DRV^out`, `DRV^*`, a `.drv` path) into the store
/// paths to look for. Derivations come from the local store, where `nix-instantiate` put
/// them, through the `readFile` the caller gives (this layer reads no files itself).
public enum Targets {
    public enum TargetError: Error, CustomStringConvertible {
        case notInStore(String, String)
        case missingDerivation(String)
        case unreadableDerivation(String, String)
        case noSuchOutput(drv: String, output: String)
        case floatingOutput(drv: String, output: String)

        public var description: String {
            switch self {
            case let .notInStore(arg, why): return "'\(arg)' is not a store path or derivation output: \(why)"
            case let .missingDerivation(p): return "derivation '\(p)' is not in the local store (instantiate it first)"
            case let .unreadableDerivation(p, why): return "cannot read derivation '\(p)': \(why)"
            case let .noSuchOutput(d, o): return "derivation '\(d)' does not have an output named '\(o)'"
            case let .floatingOutput(d, o):
                return "output '\(o)' of '\(d)' is content-addressed and not built yet: its path is not known"
            }
        }
    }

    /// The store paths for each argument, in order, without duplicates.
    public static func resolve(_ arguments: [String], storeDir: StoreDirectory,
                               readFile: (String) throws -> [UInt8]) throws -> [StorePath] {
        var out: [StorePath] = []
        var seen = Set<StorePath>()
        for arg in arguments {
            for p in try resolve(arg, storeDir: storeDir, readFile: readFile) where seen.insert(p).inserted {
                out.append(p)
            }
        }
        return out
    }

    static func resolve(_ arg: String, storeDir: StoreDirectory, readFile: (String) throws -> [UInt8]) throws -> [StorePath] {
        let derived: DerivedPath
        do { derived = try DerivedPath(parsing: arg, in: storeDir) } catch {
            throw TargetError.notInStore(arg, error.description)
        }
        switch derived {
        case let .opaque(p) where p.isDerivation:
            return try outputs(of: p, wanted: .all, storeDir: storeDir, readFile: readFile)
        case let .opaque(p):
            return [p]
        case let .built(.opaque(drv), spec):
            return try outputs(of: drv, wanted: spec, storeDir: storeDir, readFile: readFile)
        case .built:
            throw TargetError.notInStore(arg, "dynamic derivations are not supported")
        }
    }

    static func outputs(of drvPath: StorePath, wanted: OutputsSpec, storeDir: StoreDirectory,
                        readFile: (String) throws -> [UInt8]) throws -> [StorePath] {
        let file = storeDir.print(drvPath)
        let bytes: [UInt8]
        do { bytes = try readFile(file) } catch {
            throw TargetError.missingDerivation(file)
        }
        let drv: Derivation
        let outputs: [String: StorePath?]
        do {
            drv = try Derivation(parsing: bytes, name: Derivation.name(fromDrvPath: drvPath), storeDirectory: storeDir)
            outputs = try drv.outputsAndPaths(in: storeDir)
        } catch {
            throw TargetError.unreadableDerivation(file, "\(error)")
        }
        let names: [String]
        switch wanted {
        case .all: names = outputs.keys.sorted()
        case let .names(n): names = n.sorted()
        }
        return try names.map { name in
            guard let entry = outputs[name] else { throw TargetError.noSuchOutput(drv: file, output: name) }
            guard let path = entry else { throw TargetError.floatingOutput(drv: file, output: name) }
            return path
        }
    }
}
