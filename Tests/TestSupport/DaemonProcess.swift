import Foundation

/// A real `nix-daemon --stdio` on a chroot store, driven over its stdin/stdout pipes.
/// Reads block; a watchdog kills the daemon (by its PID) if a test hangs.
public final class DaemonProcess: @unchecked Sendable {
    public let process = Process()
    private let toDaemon = Pipe()
    private let fromDaemon = Pipe()
    private let errors = Pipe()
    /// `local?root=DIR`.
    public let storeURI: String
    private let writer = DispatchQueue(label: "DaemonProcess.writer")

    /// Starts the daemon on the store rooted at `root`.
    /// `environment` is added to ours (e.g. NIX_CONF_DIR for sandboxed builds).
    public init(root: URL, environment: [String: String] = [:], timeout: TimeInterval = 60) throws {
        storeURI = "local?root=" + root.path
        guard let daemon = PeerFixtures.which("nix-daemon") else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "nix-daemon not on PATH"])
        }
        process.executableURL = URL(fileURLWithPath: daemon)
        process.arguments = ["--stdio", "--store", storeURI]
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = toDaemon
        process.standardOutput = fromDaemon
        process.standardError = errors
        // A daemon that exits must not kill the test process when we write to it.
        signal(SIGPIPE, SIG_IGN)
        try process.run()
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self] in
            if let self, self.process.isRunning, self.process.processIdentifier == pid { kill(pid, SIGKILL) }
        }
    }

    /// True when nix, nix-store and nix-daemon are installed.
    public static let isAvailable = ["nix", "nix-store", "nix-daemon"].allSatisfy { PeerFixtures.which($0) != nil } || TestSupport.peersRequired

    /// Writes in order on a background queue, so a test can pipeline more requests than the
    /// pipes hold while it reads replies (else both sides would block on full pipes).
    public func write(_ bytes: [UInt8]) {
        let handle = toDaemon.fileHandleForWriting
        writer.async { try? handle.write(contentsOf: Data(bytes)) }
    }

    /// Whatever the daemon sent next; empty at end of file.
    public func read() -> [UInt8] {
        [UInt8](fromDaemon.fileHandleForReading.availableData)
    }

    /// Closes stdin and waits for the daemon to exit; returns its stderr.
    @discardableResult
    public func finish() -> String {
        writer.sync {}
        try? toDaemon.fileHandleForWriting.close()
        process.waitUntilExit()
        return String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
