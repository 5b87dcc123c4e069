import Foundation
import TestSupport
import Testing

/// The openssh transport's ControlMaster against a real sshd logging every login
/// (LogLevel VERBOSE): one login per host however many connections follow, the user's own
/// ControlPath left alone, and the pinned host key still checked by the master's login.
@Suite("openssh transport: ControlMaster", .serialized,
       .tags(.realNix, .realSSHD, .builtCLI, .hostTools),
       .enabled(if: TestSupport.hasNix && TestSupport.hasFleet && CLI.isBuilt && TestSupport.has("ssh"),
                "needs nix, sshd, ssh, root and a built nix-bridge"))
final class OpenSSHMasterTests {
    let env: Fleet

    init() throws {
        env = try Fleet(count: 1, label: "nb-master", extraSSHDConfig: ["LogLevel VERBOSE"])
    }

    /// sshd's log for builder 1: logins, and sessions (one per connection, multiplexed or not).
    func sshdLog() throws -> (logins: Int, sessions: Int) {
        let log = try String(contentsOfFile: env.directory.path + "/builder1/sshd.log", encoding: .utf8)
        // sshd -E ends lines with CRLF.
        let lines = log.split(whereSeparator: \.isNewline)
        return (lines.filter { $0.contains("Accepted publickey") }.count,
                lines.filter { $0.contains("Starting session: command") }.count)
    }

    var controlDirectory: String { env.directory.path + "/xdg-cache/nix-bridge/ssh" }

    /// Many paths over several connections and three processes: one login, every later
    /// connection a session through the master.
    @Test func aLookupLogsInOnce() throws {
        var paths: [String] = []
        for i in 0..<40 { paths.append(try env.addFile(1, name: "master-\(i)", contents: "path \(i)\n")) }
        let store = "ssh-ng://builder1?ssh-transport=openssh"
        let first = try env.bridge(["path-info", "--connections", "4", "--store", store] + paths)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.text.split(separator: "\n").count == paths.count)
        let again = try env.bridge(["path-info", "--connections", "4", "--store", store] + paths.reversed())
        #expect(again.status == 0, "\(again.stderr)")
        let ping = try env.bridge(["ping", "-v", "--store", store])
        #expect(ping.status == 0, "\(ping.stderr)")
        #expect(ping.text.contains("controlpath \(controlDirectory)/"), "\(ping.text)")

        let (logins, sessions) = try sshdLog()
        #expect(logins == 1, "\(logins) logins for \(sessions) sessions")
        #expect(sessions >= 3)
        // The directory is private; it holds one socket (and its lock).
        let attributes = try FileManager.default.attributesOfItem(atPath: controlDirectory)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        let sockets = try FileManager.default.contentsOfDirectory(atPath: controlDirectory).filter { !$0.contains(".") }
        #expect(sockets.count == 1, "\(sockets)")
        #expect(sockets.allSatisfy { ($0 as NSString).length == 16 })

        // Without the master (ssh -O exit), the next connection logs in again.
        env.stopControlMasters()
        let after = try env.bridge(["ping", "--store", store])
        #expect(after.status == 0, "\(after.stderr)")
        #expect(try sshdLog().logins == 2)
    }

    /// ControlMaster/ControlPath in the user's ssh_config are theirs: their socket, none of ours.
    @Test func theUsersControlPathIsHonoured() throws {
        let b = env.builder(1)
        let userSocketDir = try TestSupport.temporaryDirectory("nb-cm")
        defer { try? FileManager.default.removeItem(at: userSocketDir) }
        let config = try env.write("ssh_config_cm", """
            Host own
              HostName 127.0.0.1
              Port \(b.port)
              User root
              IdentityFile \(env.clientKey)
              IdentitiesOnly yes
              HostKeyAlias \(b.name)
              UserKnownHostsFile \(env.knownHosts)
              StrictHostKeyChecking yes
              BatchMode yes
              ControlMaster auto
              ControlPath \(userSocketDir.path)/cm-%C
              ControlPersist 30
              LogLevel ERROR

            """)
        let environment = env.environment.merging(["NIX_SSHOPTS": "-F \(config)"]) { $1 }
        let binary = try #require(CLI.binary)
        let ping = try TestSupport.run([binary, "ping", "-v", "--option", "ssh-transport", "openssh", "--store", "ssh-ng://own"],
                                       environment: environment, check: false)
        #expect(ping.status == 0, "\(ping.stderr)")
        #expect(ping.text.contains("no ControlMaster of nix-bridge's"), "\(ping.text)")
        let theirs = try FileManager.default.contentsOfDirectory(atPath: userSocketDir.path).filter { $0.hasPrefix("cm-") }
        #expect(theirs.count == 1, "\(theirs)")
        let ours = (try? FileManager.default.contentsOfDirectory(atPath: controlDirectory)) ?? []
        #expect(ours.isEmpty, "\(ours)")
        for socket in theirs {
            _ = try? TestSupport.run(["ssh", "-O", "exit", "-oControlPath=\(userSocketDir.path)/\(socket)", "own"], check: false)
        }
    }

    /// A master logged in with the right pinned key does not let a machines file pinning
    /// another key through: that key has a master (and a login) of its own, which ssh refuses.
    @Test func aHostKeyMismatchFailsThroughTheMaster() throws {
        let pinned = try PinnedHostPing(env)
        let good = try pinned.ping(pinned.right)
        #expect(good.status == 0, "\(good.stderr)")
        let refused = try pinned.ping(pinned.wrong)
        #expect(PinnedHostPing.isMismatch(refused), "\(refused.stderr)")
        #expect(try pinned.ping(pinned.right).status == 0)
        #expect(try sshdLog().logins == 1)
    }
}
