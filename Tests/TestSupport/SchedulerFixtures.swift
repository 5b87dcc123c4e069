import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Helpers for the scheduler tests: derivations from the real `nix-instantiate`, real
/// `nix-build -j0` error texts, and slot locks held by another process.
public enum SchedulerFixtures {
    /// `nix-instantiate` of a one-derivation expression written to `dir`; the .drv path.
    public static func instantiate(_ expression: String, in dir: URL, file: String = "drv.nix") throws -> String {
        let url = dir.appendingPathComponent(file)
        try Data(expression.utf8).write(to: url)
        return try TestSupport.run(["nix-instantiate", url.path]).trimmed
    }

    /// A derivation for `system` with `requiredSystemFeatures`, never built by these tests.
    public static func derivationExpression(name: String, system: String, features: [String] = []) -> String {
        let f = features.map { "\"\($0)\"" }.joined(separator: " ")
        return """
            derivation { name = "\(name)"; system = "\(system)"; builder = "/bin/sh"; \
            args = [ "-c" "echo > $out" ]; requiredSystemFeatures = [ \(f) ]; }
            """
    }

    /// What real `nix-build -j0 --builders BUILDERS DRV` prints from the build hook's hint
    /// (or, with no machines, from the error) on: the text nix-bridge must reproduce.
    public static func nixBuildJ0(drv: String, builders: String) throws -> (status: Int32, text: String) {
        let out = try TestSupport.run(["nix-build", "-j0", "--no-out-link", "--option", "substituters", "",
                                       "--builders", builders, drv], check: false)
        let lines = out.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: {
            $0 == "Failed to find a machine for remote build!" || $0.hasPrefix("error: unable to start any build")
        }) else { return (out.status, out.stderr) }
        var kept = Array(lines[start...])
        while kept.last?.isEmpty == true { kept.removeLast() }
        return (out.status, kept.joined(separator: "\n"))
    }

    /// A fixture that did not come up.
    public struct FixtureError: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Nix's slot lock file name, written independently of nix-bridge's code.
    public static func slotLockPath(directory: String, storeUri: String, slot: Int) -> String {
        directory + "/" + storeUri.replacingOccurrences(of: "/", with: "_") + "-\(slot)"
    }

    /// A slot lock held by another process: `sh` opens the file, the real `flock` CLI locks
    /// it (the lock belongs to the open file, which `sh` keeps), then `sh` becomes `sleep`.
    public final class HeldLock: @unchecked Sendable {
        public let path: String
        private let process: SpawnedProcess

        public init(path: String, timeout: TimeInterval = 20) throws {
            self.path = path
            let ready = path + ".held"
            unlink(ready)
            let script = "exec 9>>\"$1\" && flock -x 9 && : > \"$2\" && exec sleep 600"
            process = try SpawnedProcess(["/bin/sh", "-c", script, "sh", path, ready])
            let deadline = Date().addingTimeInterval(timeout)
            while !FileManager.default.fileExists(atPath: ready) {
                guard Date() < deadline, process.isRunning else {
                    process.stop(signal: SIGKILL)
                    throw FixtureError("flock did not take \(path)")
                }
                usleep(10_000)
            }
            unlink(ready)
        }

        public var pid: pid_t { process.pid }

        /// Ends the holder (by PID): the kernel drops its lock.
        public func release() { process.stop(signal: SIGKILL) }

        deinit { release() }
    }
}
