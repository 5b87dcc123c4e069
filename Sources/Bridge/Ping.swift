import Foundation
import NixCore
import NixStore
import NixTransport
import NixWire

/// What `nix-bridge ping` found out about one store.
public struct PingReport: Sendable {
    public var store: String
    public var nixVersion: String?
    public var protocolVersion: String?
    /// The daemon's trust in us: from the handshake (1.35+), else probed.
    public var trusted: Bool?
    /// Connect + SSH + handshake, in seconds.
    public var connectSeconds: Double?
    /// Median of a few IsValidPath round trips, in seconds.
    public var roundTripSeconds: Double?
    public var error: String?
    /// What to do about the error, in Nix users' terms.
    public var hint: String?
    /// The failure other commands remembered before this ping (they were skipping the store).
    public var earlierFailure: BuilderFailure?
    /// This ping timed out: other commands skip the store until then (`FailedBuilders`).
    public var skippedUntil: Date?
}

/// Connects to stores and explains failures the way a Nix user needs them explained.
public enum Pinger {
    /// Ping always tries, even a store that `failedBuilders` remembers (it is how one finds
    /// out that a builder is back): the remembered failure is reported, forgotten when the
    /// store answers, renewed when it times out again.
    public static func ping(_ uriText: String, opener: StoreOpener, roundTrips: Int = 5,
                            failedBuilders: FailedBuilders? = nil) async -> PingReport {
        var report = PingReport(store: uriText)
        let uri: StoreURI
        do { uri = try StoreURI(parsing: uriText) } catch {
            report.error = error.description
            return report
        }
        report.store = uri.description
        report.earlierFailure = failedBuilders?.remembered(uri.description)
        let logs = LogCapture()
        let store: RemoteStore
        do { store = try opener.store(uri, logs: { logs.append($0) }) } catch {
            report.error = error.description
            return report
        }
        let start = ContinuousClock.now
        // Cancelled (an interrupted command): the store closed, what waits on it fails at once.
        await withTaskCancellationHandler {
            do {
                let hs = try await store.handshake()
                report.connectSeconds = seconds(ContinuousClock.now - start)
                report.nixVersion = hs.info.daemonNixVersion
                report.protocolVersion = "1.\(hs.version.minor)"
                report.trusted = hs.info.remoteTrustsUs.map { $0 == .trusted }
                // A path that cannot exist: the daemon answers without touching the disk much.
                let probe = try StorePath(baseName: "00000000000000000000000000000000-nix-bridge-ping")
                var times: [Double] = []
                for _ in 0..<max(1, roundTrips) {
                    let t = ContinuousClock.now
                    _ = try await store.isValidPath(probe)
                    times.append(seconds(ContinuousClock.now - t))
                }
                report.roundTripSeconds = times.sorted()[times.count / 2]
                if report.trusted == nil { report.trusted = await probeTrust(store, logs) }
                if report.trusted == false {
                    report.hint = "the remote user is not in the builder's 'trusted-users': it cannot build input-addressed derivations or import unsigned paths (add it to trusted-users in the builder's nix.conf)"
                }
                if report.earlierFailure != nil { failedBuilders?.forget(uri.description) }
            } catch {
                report.error = "\(error)"
                if let e = error as? StoreError, e.isTimeout, let failedBuilders {
                    report.skippedUntil = failedBuilders.record(uri.description, phase: e.timeoutPhase ?? "", message: "\(e)").retryAt
                }
                report.hint = diagnose(error, remoteProgram: uri[parameter: "remote-program"] ?? "nix-daemon")
            }
        } onCancel: {
            Task { await store.close() }
        }
        await store.close()
        return report
    }

    /// Before 1.35 the handshake does not say. A daemon warns an untrusted client that it
    /// ignores a restricted setting sent with SetOptions (a trusted one just applies it to
    /// this connection's daemon process, so the probe sets a setting to its default).
    static func probeTrust(_ store: RemoteStore, _ logs: LogCapture) async -> Bool? {
        var options = ClientSettings()
        // The daemon takes its log level from SetOptions, and Nix 2.8 says it at lvlDebug
        // (later versions warn): ask for lvlDebug (6) messages, for this connection only.
        options.verbosity = 6
        options.overrides = ["narinfo-cache-negative-ttl": "3600"]
        do {
            try await store.setOptions(options)
        } catch {
            return nil
        }
        return !logs.text.contains("you are not a trusted user")
    }

    /// A hint for a failure, in the terms of Nix's own documentation. `remoteProgram` is what
    /// ran on an ssh-ng host (`remote-program`, default nix-daemon).
    public static func diagnose(_ error: any Error, remoteProgram: String = "nix-daemon") -> String? {
        switch error {
        case let StoreError.closedDuringHandshake(_, stderr)
            where stderr.contains("command not found") || stderr.contains("No such file or directory"):
            return "\(remoteProgram) is not on the PATH of non-interactive shells on the builder: make sure the PATH of non-interactive login shells contains Nix, or set remote-program= in the store URI"
        case StoreError.closedDuringHandshake:
            return "the remote command exited during the handshake: check that it is nix-daemon (or nix-bridge) and that it supports --stdio"
        case let StoreError.protocolError(_, .badMagic(_, got)):
            let printed = printable(got).map { " (it printed '\($0)…')" } ?? ""
            return "the remote side printed something before the Nix protocol started\(printed): shell start-up files (.bashrc, .profile) must print nothing for non-interactive shells"
        default:
            break
        }
        let text = "\(error)"
        if text.contains("host key mismatch") {
            return "the builder's host key differs from the one pinned in the machines file (8th field) or known_hosts: check it with ssh-keyscan, then update the pin"
        }
        if text.contains("is not in") && text.contains("known_hosts") {
            return "the builder is not in known_hosts: connect once with ssh, or pin its key in the machines file (8th field, base64 of the public key line)"
        }
        if text.contains("authentication") {
            return "the builder refused our keys: check the machines file's ssh key field and authorized_keys on the builder (RSA keys do not work with libssh2 1.10: use ed25519 or ECDSA)"
        }
        if text.contains("connection refused") {
            return "nothing listens on that port: is sshd running on the builder?"
        }
        if text.contains("not privileged") || text.contains("not trusted") {
            return "the remote user is not in the builder's 'trusted-users'"
        }
        return nil
    }

    /// The 8 bytes read as the magic number, as text when they are printable (the start of
    /// what a shell start-up file printed), with line breaks shown as `\n`.
    static func printable(_ magic: UInt64) -> String? {
        let bytes = (0..<8).map { UInt8(truncatingIfNeeded: magic >> (8 * $0)) }
        guard bytes.allSatisfy({ (0x20..<0x7f).contains($0) || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) else { return nil }
        return String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\n", with: "\\n")
            .replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\t", with: "\\t")
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// Collects a daemon's log lines (thread-safe).
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ e: LogEvent) {
        guard case let .next(line) = e else { return }
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return lines.joined()
    }
}
