// Every libssh2 call of the project lives in this file. The wrappers are not Sendable on
// purpose: a libssh2 session and everything hanging off it is used by one thread only
// (see SSHSessionThread).
import CSSH2
#if canImport(Glibc)
import Glibc
#endif

enum SSH2 {
    /// `libssh2_init` must run once, before any session exists on any thread.
    static let initialized: Bool = libssh2_init(0) == 0

    static let eagain = Int32(LIBSSH2_ERROR_EAGAIN)

    /// The loaded library's version ("1.10.0"): the one found at run time, not at build time.
    static var version: String { libssh2_version(0).map { String(cString: $0) } ?? "unknown" }

    /// libssh2 ≥ 1.11 signs RSA user keys with rsa-sha2-256/512 (it reads the server's
    /// server-sig-algs); 1.10 signs only with SHA-1 ssh-rsa, which OpenSSH ≥ 8.8 refuses.
    static var signsRSAWithSHA2: Bool { libssh2_version(0x010b00) != nil }
    static let channelClosed = Int32(LIBSSH2_ERROR_CHANNEL_CLOSED)
    static let eofSent = Int32(LIBSSH2_ERROR_CHANNEL_EOF_SENT)

    /// libssh2 1.10 has no GCM, chacha20 or ETM MACs; these are its fastest (see
    /// Docs and real-nix notes: ≈500 MiB/s on loopback with the default window).
    static let ciphers = "aes128-ctr,aes192-ctr,aes256-ctr,aes256-cbc,aes128-cbc"
    /// libssh2 1.11 adds AES-GCM (one pass for cipher and MAC), preferred when the loaded
    /// library offers it: the same binary runs with 1.10 or 1.11, so this is asked at run time.
    static let gcmCiphers = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]

    static let macs = "hmac-sha2-256,hmac-sha2-512,hmac-sha1"
    static var hostKeyTypes: String {
        "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521," + (signsRSAWithSHA2 ? "rsa-sha2-512,rsa-sha2-256,ssh-rsa" : "ssh-rsa")
    }

    /// The host key algorithms that verify a key of `type` as known_hosts records it.
    static func hostKeyAlgorithms(forKeyType type: String) -> [String] {
        type == "ssh-rsa" && signsRSAWithSHA2 ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type]
    }
}

/// One libssh2 session (non-blocking mode) on a connected socket, which it owns.
final class SSH2Session {
    let raw: OpaquePointer
    /// Closed only once the session is freed: freeing may still read and write it (a channel's
    /// close), and a closed descriptor's number soon belongs to another connection, whose
    /// bytes the dying session would then take or corrupt.
    let link: SSHLink

    init?(link: SSHLink) {
        guard SSH2.initialized, let s = nb_ssh2_session_init() else { return nil }
        raw = s
        self.link = link
        libssh2_session_set_blocking(s, 0)
    }

    deinit {
        libssh2_session_free(raw)
        link.close()
    }

    /// Sets the method preferences; `hostKeyTypes` first so a pinned key's type is negotiated.
    func preferMethods(hostKeyTypes: String) {
        libssh2_session_method_pref(raw, LIBSSH2_METHOD_HOSTKEY, hostKeyTypes)
        if SSH2.signsRSAWithSHA2 {
            // LIBSSH2_METHOD_SIGN_ALGO, new in 1.11 (not in the 1.10 headers built against).
            libssh2_session_method_pref(raw, 10, "rsa-sha2-512,rsa-sha2-256,ssh-rsa")
        }
        let supported = supportedAlgorithms(LIBSSH2_METHOD_CRYPT_CS)
        let ciphers = (SSH2.gcmCiphers.filter(supported.contains) + [SSH2.ciphers]).joined(separator: ",")
        for m in [LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC] {
            libssh2_session_method_pref(raw, m, ciphers)
        }
        for m in [LIBSSH2_METHOD_MAC_CS, LIBSSH2_METHOD_MAC_SC] {
            libssh2_session_method_pref(raw, m, SSH2.macs)
        }
        for m in [LIBSSH2_METHOD_COMP_CS, LIBSSH2_METHOD_COMP_SC] {
            libssh2_session_method_pref(raw, m, "none")
        }
    }

    /// The methods of one kind the loaded libssh2 implements.
    func supportedAlgorithms(_ method: Int32) -> [String] {
        var algs: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        let n = libssh2_session_supported_algs(raw, method, &algs)
        guard n > 0, let algs else { return [] }
        defer { libssh2_free(raw, algs) }
        return (0..<Int(n)).compactMap { algs[$0].map { String(cString: $0) } }
    }

    func handshake() -> Int32 { libssh2_session_handshake(raw, link.fd) }

    /// Which way the last EAGAIN was waiting: (inbound, outbound).
    var blockDirections: (inbound: Bool, outbound: Bool) {
        let d = libssh2_session_block_directions(raw)
        return (d & LIBSSH2_SESSION_BLOCK_INBOUND != 0, d & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0)
    }

    var lastErrno: Int32 { libssh2_session_last_errno(raw) }

    var lastErrorMessage: String {
        var msg: UnsafeMutablePointer<CChar>?
        var len: Int32 = 0
        libssh2_session_last_error(raw, &msg, &len, 0)
        guard let msg else { return "unknown libssh2 error" }
        return String(cString: msg)
    }

    /// The server's host key blob (SSH wire format) and libssh2's type code.
    var hostKey: (blob: [UInt8], type: Int32)? {
        var len = 0
        var type: Int32 = 0
        guard let p = libssh2_session_hostkey(raw, &len, &type), len > 0 else { return nil }
        return (p.withMemoryRebound(to: UInt8.self, capacity: len) { Array(UnsafeBufferPointer(start: $0, count: len)) }, type)
    }

    /// The negotiated algorithm names, for diagnostics and benchmarks.
    func negotiated(_ method: Int32) -> String? {
        libssh2_session_methods(raw, method).map { String(cString: $0) }
    }
    var negotiatedCipher: String? { negotiated(LIBSSH2_METHOD_CRYPT_CS) }
    var negotiatedMAC: String? { negotiated(LIBSSH2_METHOD_MAC_CS) }

    /// The server's allowed methods; nil with `lastErrno == EAGAIN` means "call again".
    func authList(user: String) -> String? {
        libssh2_userauth_list(raw, user, UInt32(user.utf8.count)).map { String(cString: $0) }
    }

    var authenticated: Bool { libssh2_userauth_authenticated(raw) != 0 }

    func authFromFile(user: String, publicKey: String?, privateKey: String, passphrase: String?) -> Int32 {
        nb_ssh2_userauth_publickey_fromfile(raw, user, publicKey, privateKey, passphrase)
    }

    /// Opens a "session" channel with a `window` of bytes the server may send ahead of what
    /// we read (libssh2 holds them: it is memory per channel).
    func openChannel(window: Int) -> SSH2Channel? {
        nb_ssh2_channel_open_session(raw, UInt32(window)).map { SSH2Channel($0, session: self) }
    }

    func disconnect(_ why: String) -> Int32 { nb_ssh2_session_disconnect(raw, why) }

    /// Opens a direct-tcpip channel (what `ssh -W host:port` asks for) through this session.
    func openDirectTCPIP(host: String, port: Int) -> SSH2Channel? {
        libssh2_channel_direct_tcpip_ex(raw, host, Int32(port), "127.0.0.1", 22).map { SSH2Channel($0, session: self) }
    }

    /// Keepalive messages (OpenSSH's ServerAliveInterval) every `interval` seconds of quiet.
    func configureKeepalive(interval: Int) {
        libssh2_keepalive_config(raw, 1, UInt32(clamping: interval))
    }

    /// Sends a keepalive if one is due; returns the seconds until the next one.
    func sendKeepalive() -> Int? {
        var next: Int32 = 0
        return libssh2_keepalive_send(raw, &next) == 0 ? Int(next) : nil
    }
}

/// An exec channel. Freed before its session (the owner keeps that order).
final class SSH2Channel {
    let raw: OpaquePointer
    /// Keeps the session alive until the channel is freed.
    let session: SSH2Session
    init(_ raw: OpaquePointer, session: SSH2Session) {
        self.raw = raw
        self.session = session
    }
    deinit { libssh2_channel_free(raw) }

    func exec(_ command: String) -> Int32 { nb_ssh2_channel_exec(raw, command) }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        nb_ssh2_channel_read(raw, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
    }

    func readStderr(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        nb_ssh2_channel_read_stderr(raw, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
    }

    func write(_ buffer: UnsafeRawBufferPointer) -> Int {
        nb_ssh2_channel_write(raw, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
    }

    /// True when libssh2 already holds data (stdout or stderr) for this channel that no read
    /// has taken yet: the socket may then be quiet although there is something to read.
    var hasQueuedData: Bool { libssh2_poll_channel_read(raw, 1) > 0 }

    func sendEOF() -> Int32 { libssh2_channel_send_eof(raw) }
    /// True once the remote sent EOF and every byte before it was read.
    var remoteEOF: Bool { libssh2_channel_eof(raw) == 1 }
    func close() -> Int32 { libssh2_channel_close(raw) }
    func waitClosed() -> Int32 { libssh2_channel_wait_closed(raw) }
    var exitStatus: Int32 { libssh2_channel_get_exit_status(raw) }

    /// The signal name (without "SIG") that killed the remote command, if any.
    var exitSignal: String? {
        var name: UnsafeMutablePointer<CChar>?
        var len = 0
        guard libssh2_channel_get_exit_signal(raw, &name, &len, nil, nil, nil, nil) == 0, let name else { return nil }
        defer { free(name) }
        return len > 0 ? String(cString: name) : nil
    }
}

/// An ssh-agent connection (blocking Unix-socket calls; userauth may return EAGAIN).
final class SSH2Agent {
    struct Identity { let comment: String; let blob: [UInt8]; let raw: UnsafeMutablePointer<libssh2_agent_publickey> }
    let raw: OpaquePointer
    let session: SSH2Session

    init?(session: SSH2Session, socketPath: String?) {
        guard let a = libssh2_agent_init(session.raw) else { return nil }
        raw = a
        self.session = session
        if let socketPath { libssh2_agent_set_identity_path(a, socketPath) }
    }
    deinit {
        libssh2_agent_disconnect(raw)
        libssh2_agent_free(raw)
    }

    func connect() -> Bool { libssh2_agent_connect(raw) == 0 }

    func identities() -> [Identity] {
        guard libssh2_agent_list_identities(raw) == 0 else { return [] }
        var result: [Identity] = []
        var prev: UnsafeMutablePointer<libssh2_agent_publickey>?
        while result.count < 1000 {
            var next: UnsafeMutablePointer<libssh2_agent_publickey>?
            guard libssh2_agent_get_identity(raw, &next, prev) == 0, let id = next else { break }
            let blob = Array(UnsafeBufferPointer(start: id.pointee.blob, count: id.pointee.blob_len))
            result.append(Identity(comment: id.pointee.comment.map { String(cString: $0) } ?? "", blob: blob, raw: id))
            prev = id
        }
        return result
    }

    func userauth(user: String, identity: Identity) -> Int32 {
        libssh2_agent_userauth(raw, user, identity.raw)
    }
}
