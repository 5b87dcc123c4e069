import Foundation
import NixCore
#if canImport(Glibc)
import Glibc
#endif

/// nix-bridge's own OpenSSH ControlMaster for one host, shared by every connection the
/// openssh transport makes to it (and by other nix-bridge processes of the same user): one
/// login per host, then each connection is a session multiplexed over it.
///
/// The socket lives in a private (0700) directory, named by a digest of everything that
/// shapes the login (ssh program, destination, port, key, pinned host key, `NIX_SSHOPTS`),
/// as OpenSSH's `%C` names one by host, port and user: another pinned key makes another
/// master, which checks that key itself. The master is started as
/// `ssh HOST -M -N -oControlPersist=60`: it goes to the background once logged in and ends
/// after 60 s without sessions, so nothing has to stop it when nix-bridge exits.
public struct OpenSSHMaster: Sendable, Equatable {
    /// The directory holding sockets, their locks and pinned-key known_hosts files.
    public var directory: String
    /// ControlPersist: seconds the master stays after its last session ended.
    public var persist: Int

    public init(directory: String = OpenSSHMaster.defaultDirectory(), persist: Int = 60) {
        self.directory = directory
        self.persist = persist
    }

    /// Linux's sun_path is 108 bytes, BSD's and macOS's 104; ssh binds `PATH.XXXXXXXXXXXXXXXX`
    /// first and renames it, so a control path may have 104 - 17 - 1 bytes.
    static let maxSocketPath = 104 - 17 - 1
    /// The socket name: 16 hex digits of a SHA-256.
    static let nameLength = 16

    /// `$XDG_RUNTIME_DIR/nix-bridge/ssh`, else `$XDG_CACHE_HOME` or `~/.cache` +
    /// `/nix-bridge/ssh`; `/tmp/nix-bridge-UID/ssh` when those make a socket path too long.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let base: String
        if let run = environment["XDG_RUNTIME_DIR"], !run.isEmpty {
            base = run
        } else if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty {
            base = cache
        } else {
            base = (environment["HOME"] ?? NSHomeDirectory()) + "/.cache"
        }
        let dir = base + "/nix-bridge/ssh"
        if dir.utf8.count + 1 + nameLength <= maxSocketPath { return dir }
        return "/tmp/nix-bridge-\(geteuid())/ssh"
    }

    /// The control socket for a login described by `key`.
    func socket(for key: String) -> String {
        directory + "/" + String(HashSink.hash(.sha256, string: key).string(.base16, withAlgorithm: false).prefix(Self.nameLength))
    }

    /// Creates the directory (and parents) and makes sure only we can enter it: ours, 0700.
    func preparedDirectory() throws(TransportError) {
        let fail = { (why: String) in TransportError.spawnFailed(command: "ssh", message: "control directory \(directory): \(why)") }
        do {
            let parent = (directory as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch { throw fail("\(error)") }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw fail(Posix.errorText()) }
        var st = stat()
        guard lstat(directory, &st) == 0 else { throw fail(Posix.errorText()) }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw fail("not a directory") }
        guard st.st_uid == geteuid() else { throw fail("owned by uid \(st.st_uid), not by us") }
        if st.st_mode & 0o077 != 0 && chmod(directory, 0o700) != 0 { throw fail("chmod 0700: \(Posix.errorText())") }
    }

    /// Whether a master listens on `socket` (a connect that succeeds; a stale file refuses).
    static func isListening(_ socket: String) async -> Bool {
        guard let s = try? UnixSocketStream(path: socket) else { return false }
        await s.close()
        return true
    }

    /// Starts the master for `client` unless one already listens on `socket`. Starts for one
    /// socket are serialised within the process (`MasterStarts`) and across processes (an
    /// flock on `SOCKET.lock`); a stale socket is removed first.
    func ensureRunning(_ client: OpenSSHClient, socket: String, knownHostsFile: String?) async throws(TransportError) {
        if await Self.isListening(socket) { return }
        try await MasterStarts.shared.once(socket) { () async throws(TransportError) in
            if await Self.isListening(socket) { return }
            let lock = try await Self.lock(socket + ".lock", for: client.connectTimeout + .seconds(5), peer: client.peer)
            defer { Glibc.close(lock) }
            if await Self.isListening(socket) { return }
            unlink(socket)
            try await start(client, socket: socket, knownHostsFile: knownHostsFile)
        }
    }

    /// `ssh HOST -M -N`: the foreground ssh exits 0 once logged in and the master has forked
    /// to the background; a failed login exits with ssh's own message on stderr.
    private func start(_ client: OpenSSHClient, socket: String, knownHostsFile: String?) async throws(TransportError) {
        let args = try client.commonArguments(knownHostsFile: knownHostsFile)
            + ["-M", "-N", "-oControlPath=" + OpenSSHClient.quoted(socket), "-oControlPersist=\(persist)"]
        let ssh = try ProcessStream(args)
        let timeout = client.connectTimeout
        let status: Int32? = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await ssh.waitForExit() }
            group.addTask { try? await Task.sleep(for: timeout); return nil }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let status else {
            await ssh.close()
            throw .connectFailed(peer: client.peer, message: "timed out after \(timeout) starting the ControlMaster")
        }
        let why = (await ssh.finalStderrText()).trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0 else {
            throw .connectFailed(peer: client.peer, message: why.isEmpty ? "ssh -M exited with status \(status)" : why)
        }
        guard await Self.isListening(socket) else {
            throw .connectFailed(peer: client.peer, message: "the ControlMaster logged in but does not listen on \(socket)"
                                 + (why.isEmpty ? "" : ": \(why)"))
        }
    }

    /// An exclusive flock on `path`, polled so no thread blocks while another process logs in.
    private static func lock(_ path: String, for limit: Duration, peer: String) async throws(TransportError) -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .spawnFailed(command: "ssh", message: "cannot open \(path): \(Posix.errorText())") }
        let deadline = ContinuousClock.now + limit
        while system_flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK, ContinuousClock.now < deadline else {
                Glibc.close(fd)
                throw .connectFailed(peer: peer, message: "another process holds \(path) (starting a ControlMaster) too long")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return fd
    }

    /// A known_hosts beside the socket holding only the pinned key, kept while a master may
    /// use it (a rekey checks the host key again). Its host pattern is `*`, as ssh looks the
    /// key up under HostKeyAlias, HostName or `[HostName]:port`.
    func knownHostsFile(socket: String, line: String) throws(TransportError) -> String {
        let file = socket + ".known_hosts"
        let text = "* \(line)\n"
        if (try? String(contentsOfFile: file, encoding: .utf8)) == text { return file }
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: file), options: .atomic) } catch {
            throw .spawnFailed(command: "ssh", message: "cannot write \(file): \(error)")
        }
        return file
    }
}

/// Master starts in flight in this process, by socket: a second connection to a host whose
/// master is being started waits for that start instead of starting another.
actor MasterStarts {
    static let shared = MasterStarts()
    private var running: [String: Task<Result<Void, TransportError>, Never>] = [:]

    func once(_ socket: String, _ start: @escaping @Sendable () async throws(TransportError) -> Void) async throws(TransportError) {
        if let task = running[socket] { return try await task.value.get() }
        let task = Task { () async -> Result<Void, TransportError> in
            do throws(TransportError) { try await start(); return .success(()) } catch { return .failure(error) }
        }
        running[socket] = task
        let result = await task.value
        running[socket] = nil
        try result.get()
    }
}
