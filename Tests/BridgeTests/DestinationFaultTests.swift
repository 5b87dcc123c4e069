import Foundation
import NixCore
import NixSigning
import NixTransport
import Testing
import TestSupport
@testable import Bridge
@testable import NixStore

/// The destination fails under a substitution: its disk is full (a tmpfs smaller than the
/// NAR), or its `nix-daemon --stdio` is killed mid-NAR. A 16 MiB path on two real builders.
@Suite(.serialized, .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"))
final class DestinationFaultTests {
    let env: SubstitutionScenario
    var disk: SmallDisk?

    init() throws {
        env = try SubstitutionScenario(label: "dest-fault",
                                       fixture: try StoreFixture.large(mebibytes: 16, name: "dest-fault-large", seed: 33))
    }

    deinit {
        disk?.unmount()
        env.stop()
    }

    var path: StorePath { env.fixture.roots[0] }
    var printed: String { StoreDirectory.default.print(path) }

    /// What the destination's store directory holds besides its valid paths (and `.links`).
    func strayEntries() throws -> [String] {
        let dir = env.destRoot.path + StoreDirectory.default.path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let valid = Set(try env.destInfos().compactMap { ($0["path"] as? String).map { String($0.split(separator: "/").last!) } })
        return entries.filter { $0 != ".links" && !valid.contains($0) }.sorted()
    }

    @Test func aFullDestinationDiskEndsWithNixsErrorAndRegistersNothing() async throws {
        disk = try SmallDisk(bytes: 4 << 20, on: env.destRoot)
        let s = try env.substituter(builders: [0, 1])
        let start = ContinuousClock.now
        do {
            _ = try await s.substitute([path])
            Issue.record("a 16 MiB NAR fit on a 4 MiB disk")
        } catch {
            let text = "\(error)"
            #expect(text.contains("cannot substitute '\(printed)'"), "\(text)")
            // Nix's words (the destination daemon's), with the destination named; as in Nix,
            // the next source is tried too.
            for b in ["ssh-ng://builder1", "ssh-ng://builder2"] {
                #expect(text.contains("\(b): writing to file: No space left on device (from '\(env.destURI)')"), "\(text)")
            }
        }
        #expect(ContinuousClock.now - start < .seconds(60))
        await s.destination.close()
        disk?.unmount()
        let verify = try TestSupport.run(["nix-store", "--store", env.destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(try env.destInfos().isEmpty, "nothing registered")
        #expect(try strayEntries().isEmpty, "no partial path left in the store directory")
        #expect(env.stagedFiles.isEmpty)
    }

    /// The `nix-daemon --stdio` this process started for the destination.
    static func destinationDaemons(root: String) -> [pid_t] {
        ProcessTree.descendants(of: getpid()).filter { pid in
            let argv = ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").split(separator: "\0")
            return argv.first?.hasSuffix("nix-daemon") == true && argv.contains("--stdio")
                && argv.contains { $0.contains(root) }
        }
    }

    /// Substitutes the path from `builders`, SIGKILLing the destination's `nix-daemon
    /// --stdio` once 2 MiB of the NAR went through.
    func substituteKillingTheDestinationDaemon(builders: [Int]) async throws -> (Result<[StorePath], any Error>, EventLog, Substituter) {
        let s = try env.substituter(builders: builders)
        let log = EventLog()
        let once = KillOnce()
        let killed = PIDList()
        let result: Result<[StorePath], any Error>
        do {
            let root = env.destRoot.path
            result = .success(try await s.substitute([path]) { event in
                log.add(event)
                if case let .received(_, _, bytes) = event, bytes >= 2 << 20 {
                    once.run { for pid in Self.destinationDaemons(root: root) { kill(pid, SIGKILL); killed.add(pid) } }
                }
            })
        } catch {
            result = .failure(error)
        }
        #expect(killed.all.count == 1, "the destination daemon was found and killed")
        return (result, log, s)
    }

    /// The one failure: builder1's attempt, the destination named (its pipe ended: a read
    /// sees the end or a write the broken pipe, whichever comes first).
    func expectDestinationNamed(_ failures: [String]) {
        #expect(failures.count == 1 && failures[0].hasPrefix("ssh-ng://builder1: while receiving from 'ssh-ng://builder1': ")
                && failures[0].contains("'\(env.destURI)'"), "\(failures)")
    }

    @Test func destinationDaemonKilledMidNARWithOneSourceRegistersNothing() async throws {
        let (result, _, s) = try await substituteKillingTheDestinationDaemon(builders: [0])
        #expect(throws: (any Error).self) { try result.get() }
        if case let .failure(error) = result {
            #expect("\(error)".hasPrefix("cannot substitute '\(printed)':\n"), "\(error)")
            expectDestinationNamed("\(error)".split(separator: "\n").dropFirst().map { String($0.dropFirst(2)) })
        }
        await s.destination.close()
        let verify = try TestSupport.run(["nix-store", "--store", env.destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(try env.destInfos().isEmpty, "nothing registered")
        // The killed daemon could not clean up: its half-written path and lock stay in the
        // store directory, invalid (Nix's garbage), until the next attempt deletes them.
        let name = String(printed.dropFirst(StoreDirectory.default.path.count + 1))
        #expect(try strayEntries() == [name, name + ".lock"])
        #expect(env.stagedFiles.isEmpty)
        let again = try env.substituter(builders: [0])
        #expect(try await again.substitute([path]) == [path])
        await again.destination.close()
        #expect(try env.destInfos().compactMap { $0["path"] as? String } == [printed])
        #expect(try strayEntries() == [])
    }

    @Test func destinationDaemonKilledMidNARFallsOverThroughANewDaemon() async throws {
        let (result, log, s) = try await substituteKillingTheDestinationDaemon(builders: [0, 1])
        // Blamed on that attempt, not on the store: the next source is tried through a new
        // daemon and the path arrives whole.
        #expect(try result.get() == [path])
        expectDestinationNamed(log.failures)
        await s.destination.close()
        let verify = try TestSupport.run(["nix-store", "--store", env.destURI, "--verify", "--check-contents"], check: false)
        #expect(verify.status == 0 && !verify.stderr.contains("modified"), "\(verify.stderr)")
        let infos = try env.destInfos()
        #expect(infos.compactMap { $0["path"] as? String } == [printed])
        #expect((infos.first?["signatures"] as? [String] ?? []).contains { $0.hasPrefix("builder2-1:") })
        #expect(try strayEntries().isEmpty)
        #expect(env.stagedFiles.isEmpty)
    }
}

final class PIDList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [pid_t] = []
    func add(_ pid: pid_t) { lock.withLock { list.append(pid) } }
    var all: [pid_t] { lock.withLock { list } }
}
