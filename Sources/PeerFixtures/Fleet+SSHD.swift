import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starting a builder's sshd and finding loopback ports for it.
extension Fleet {
    /// Starts sshd for builder directory `b` on a free port, trying other ports when another
    /// process takes the chosen one first. Returns once it accepts connections.
    static func startSSHD(dir b: String, hostKeys: [String], root: String? = nil, extra: [String] = []) throws -> (SpawnedProcess, Int) {
        for _ in 0..<8 {
            let port = try freeLoopbackPort()
            try """
            ListenAddress 127.0.0.1
            Port \(port)
            \(hostKeys.map { "HostKey \($0)" }.joined(separator: "\n"))
            AuthorizedKeysFile \(b)/authorized_keys
            PidFile none
            UsePAM no
            StrictModes no
            PermitRootLogin prohibit-password
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PrintMotd no
            PrintLastLog no
            MaxStartups 100:30:200
            MaxSessions 100
            SetEnv NIX_CONF_DIR=\(b)/nixconf HOME=\(b)/home
            \(extra.joined(separator: "\n"))

            """.write(toFile: "\(b)/sshd_config", atomically: true, encoding: .utf8)
            // sshd needs an absolute path to re-execute itself.
            let command = ["-D", "-f", "\(b)/sshd_config", "-E", "\(b)/sshd.log"]
            let sshd = try SpawnedProcess(root.map { NixVersions.inRoot($0, binds: [b], ["/usr/sbin/sshd"] + command) }
                                          ?? [PeerFixtures.which("sshd") ?? "/usr/sbin/sshd"] + command)
            if waitListening(port: port, timeout: 10, while: { sshd.isRunning }), sshd.isRunning { return (sshd, port) }
            sshd.stop()
        }
        throw FleetError(message: "sshd did not start; see \(b)/sshd.log")
    }

    public struct FleetError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    static func keygen(type: String, path: String, comment: String) throws {
        try PeerFixtures.run(["ssh-keygen", "-q", "-t", type, "-N", "", "-C", comment, "-f", path])
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range
    /// (so outgoing connections of parallel tests cannot take it meanwhile).
    public static func freeLoopbackPort() throws -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20000..<32000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            let ok = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if ok { return port }
        }
        return try ephemeralLoopbackPort()
    }

    static func ephemeralLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FleetError(message: "socket: \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { throw FleetError(message: "bind: \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// True once something accepts TCP connections on 127.0.0.1:port.
    public static func waitListening(port: Int, timeout: Double, while alive: () -> Bool = { true }) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && alive() {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            let rc = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if rc == 0 { return true }
            usleep(20_000)
        }
        return false
    }
}

extension Fleet {
    /// Writes `ssh_config_NAME`: the fleet's ssh_config with builder `n` reached at `port`
    /// instead (a proxy in front of its sshd); returns its path.
    public func sshConfig(sending n: Int, toPort port: Int, name: String) throws -> String {
        let path = work.appendingPathComponent("ssh_config_\(name)").path
        try ("Host \(builder(n).name)\n  Port \(port)\n\n" + String(contentsOfFile: sshConfig, encoding: .utf8))
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
