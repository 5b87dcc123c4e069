import Foundation

/// Which SSH client carries an ssh-ng connection: the `ssh-transport` setting, or the
/// `ssh-transport` parameter of one store URI (which wins).
/// - `libssh2`: nix-bridge's own client (pipelined channels on one session per builder).
/// - `openssh`: the user's `ssh`, run as Nix runs it (`OpenSSHClient`).
/// - `auto`: libssh2, unless the host's effective ssh_config asks for something only the
///   real client has (`SSHOptions.needsOpenSSH`); NAR transfers over OpenSSH where it can
///   carry them (`narChoice`).
public enum SSHTransport: String, Sendable, CaseIterable {
    case libssh2, openssh, auto

    public init(parsing text: String) throws(TransportError) {
        guard let t = SSHTransport(rawValue: text) else {
            throw .connectFailed(peer: "ssh-transport", message: "'\(text)' is not one of libssh2, openssh, auto")
        }
        self = t
    }

    /// The client used for a host with these effective options, and why.
    public func choice(for options: SSHOptions) -> (client: SSHTransport, reason: String) {
        switch self {
        case .libssh2: return (.libssh2, "ssh-transport = libssh2")
        case .openssh: return (.openssh, "ssh-transport = openssh")
        case .auto:
            if let why = options.needsOpenSSH { return (.openssh, why) }
            return (.libssh2, "libssh2 handles every setting this host uses")
        }
    }

    /// The client for NAR transfers. Under `auto` it is OpenSSH's whenever that client can
    /// reach the host (`openSSHUnusable` nil): it moved a large NAR faster than libssh2 in
    /// every run of `nix-bridge-bench transport` (its cipher is AES-GCM or ChaCha20, and its
    /// crypto runs in a process of its own), while the many small requests of a lookup stay
    /// on libssh2's pipelined session.
    /// - Parameter openSSHUnusable: why the OpenSSH client cannot carry this host's NARs
    ///   (no `ssh`, a different ssh_config), or nil.
    public func narChoice(for options: SSHOptions, openSSHUnusable: String?) -> (client: SSHTransport, reason: String) {
        let general = choice(for: options)
        guard self == .auto, general.client == .libssh2 else { return general }
        if let why = openSSHUnusable { return (.libssh2, "NARs over libssh2 too: \(why)") }
        return (.openssh, "OpenSSH's client is faster for NARs")
    }
}

extension SSHOptions {
    /// Keywords whose effect only OpenSSH's client has.
    static let openSSHOnlyKeywords: Set<String> = [
        "certificatefile", "securitykeyprovider", "pkcs11provider", "identityagent",
        "gssapiauthentication", "gssapidelegatecredentials", "hostbasedauthentication",
    ]

    /// Why this host needs the real OpenSSH client ("CertificateFile (file:line)"), or nil
    /// when the libssh2 transport honours everything its configuration asks for: a
    /// certificate, a FIDO (`sk-`) key, GSSAPI, host-based authentication, a PKCS#11
    /// provider, or an agent other than SSH_AUTH_SOCK's.
    public var needsOpenSSH: String? {
        for s in settings where Self.openSSHOnlyKeywords.contains(s.keyword) {
            let value = s.arguments.first?.lowercased() ?? ""
            if ["no", "false", "none"].contains(value) { continue }
            return "\(s.keyword) \(s.arguments.joined(separator: " ")) (\(s.origin)) needs OpenSSH's client"
        }
        for file in identityFiles {
            let path = file.hasPrefix("~/") ? SSHConfig.home + file.dropFirst(1) : file
            if FileManager.default.fileExists(atPath: path + "-cert.pub") {
                return "identity \(file) has a certificate (\(path)-cert.pub), which needs OpenSSH's client"
            }
            if let pub = try? String(contentsOfFile: path + ".pub", encoding: .utf8), pub.hasPrefix("sk-") {
                return "identity \(file) is a security key (sk-), which needs OpenSSH's client"
            }
        }
        return nil
    }
}
