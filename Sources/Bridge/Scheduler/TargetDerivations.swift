import Foundation
import NixCore

extension Targets {
    /// A derivation a user named, read from the local store.
    public struct NamedDerivation: Sendable {
        public var path: StorePath
        public var derivation: Derivation
    }

    /// The derivations behind `DRV`, `DRV^out`, `DRV^*` arguments, in order, without
    /// duplicates. A store path that is not a derivation is an error.
    public static func derivations(_ arguments: [String], storeDir: StoreDirectory,
                                   readFile: (String) throws -> [UInt8]) throws -> [NamedDerivation] {
        var out: [NamedDerivation] = []
        var seen = Set<StorePath>()
        for arg in arguments {
            let derived: DerivedPath
            do { derived = try DerivedPath(parsing: arg, in: storeDir) } catch {
                throw TargetError.notInStore(arg, error.description)
            }
            let drvPath: StorePath
            switch derived {
            case let .opaque(p) where p.isDerivation: drvPath = p
            case let .built(.opaque(p), _): drvPath = p
            case .opaque:
                throw TargetError.notInStore(arg, "not a derivation (name a '.drv' path or 'DRV^OUTPUT')")
            case .built:
                throw TargetError.notInStore(arg, "dynamic derivations are not supported")
            }
            guard seen.insert(drvPath).inserted else { continue }
            let file = storeDir.print(drvPath)
            let bytes: [UInt8]
            do { bytes = try readFile(file) } catch { throw TargetError.missingDerivation(file) }
            do {
                let drv = try Derivation(parsing: bytes, name: Derivation.name(fromDrvPath: drvPath), storeDirectory: storeDir)
                out.append(NamedDerivation(path: drvPath, derivation: drv))
            } catch {
                throw TargetError.unreadableDerivation(file, "\(error)")
            }
        }
        return out
    }
}
