import NixCore
import NixTransport
import NixWire

/// Why a store operation failed, naming the store it talked to.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The daemon answered with an error (its message, colours stripped).
    case daemon(peer: String, DaemonError)
    /// The peer sent bytes that are not the worker protocol (e.g. shell start-up output).
    case protocolError(peer: String, WireError)
    /// The transport failed (SSH, process, socket).
    case transport(peer: String, String)
    /// The connection ended while requests were waiting.
    case closed(peer: String)
    /// The remote side closed before the handshake finished; `stderr` is what it printed
    /// (e.g. "bash: nix-daemon: command not found").
    case closedDuringHandshake(peer: String, stderr: String)
    /// The NAR consumer refused the data (hash mismatch, disk full...).
    case sink(peer: String, any Error)
    /// The daemon answered something other than what the request expects.
    case unexpectedResponse(peer: String, op: String)
    /// A request was made while another one streams its data on the same connection.
    case busy(peer: String)
    /// We closed the connection in the middle of a streamed request (its data source failed),
    /// so that the daemon registers nothing.
    case aborted(peer: String, reason: String)
    /// The store URI cannot be opened by this version.
    case unsupportedStore(String, reason: String)
    /// Nothing came from the store for `seconds` while it was doing `phase` ("SSH
    /// handshake", "worker handshake", "QueryPathInfo", "NarFromPath"...); the connection
    /// was closed.
    case timedOut(peer: String, seconds: Double, phase: String)

    public var peer: String {
        switch self {
        case let .daemon(p, _), let .protocolError(p, _), let .transport(p, _), let .closed(p),
             let .closedDuringHandshake(p, _), let .sink(p, _), let .unexpectedResponse(p, _), let .busy(p),
             let .aborted(p, _), let .timedOut(p, _, _):
            return p
        case let .unsupportedStore(p, _): return p
        }
    }

    public var description: String {
        switch self {
        case let .daemon(p, e): return "\(e.displayMessage) (from '\(p)')"
        case let .protocolError(p, e): return "protocol error talking to '\(p)': \(e)"
        case let .transport(p, why): return "cannot connect to '\(p)': \(why)"
        case let .closed(p): return "connection to '\(p)' closed"
        case let .closedDuringHandshake(p, stderr):
            let said = stderr.split(separator: "\n").suffix(3).joined(separator: "; ")
            return "cannot connect to '\(p)': the remote side closed the connection during the handshake"
                + (said.isEmpty ? "" : " (it said: \(said))")
        case let .sink(p, e): return "while receiving from '\(p)': \(e)"
        case let .unexpectedResponse(p, op): return "'\(p)' gave an unexpected reply to \(op)"
        case let .busy(p): return "connection to '\(p)' is busy streaming a NAR"
        case let .aborted(p, why): return "connection to '\(p)' aborted mid-NAR: \(why)"
        case let .unsupportedStore(u, why): return "don't know how to open Nix store '\(u)': \(why)"
        case let .timedOut(p, s, phase):
            let what = p.hasPrefix("ssh-ng://") || p.hasPrefix("ssh://") ? "builder" : "store"
            return "\(what) '\(p)': timed out after \(Self.seconds(s)) s during \(phase)"
        }
    }

    /// True for the failures that cost their time to find out (a timeout, a dead link): the
    /// ones worth remembering so that the next command does not wait on the store again.
    public var isTimeout: Bool {
        if case .timedOut = self { return true }
        return false
    }

    /// What the store was doing when it timed out.
    public var timeoutPhase: String? {
        if case let .timedOut(_, _, phase) = self { return phase }
        return nil
    }

    /// "15", "0.5": whole seconds without a fraction.
    static func seconds(_ s: Double) -> String {
        s == s.rounded() && abs(s) < 1e15 ? String(Int64(s)) : String(s)
    }

    static func wrap(_ error: any Error, peer: String) -> StoreError {
        switch error {
        case let e as StoreError: return e
        case let e as SSHError:
            switch e.reason {
            case let .connectTimeout(s, phase): return .timedOut(peer: peer, seconds: s, phase: phase)
            case let .ioTimeout(s): return .timedOut(peer: peer, seconds: s, phase: "a transfer")
            case let .serverNotResponding(s): return .timedOut(peer: peer, seconds: s, phase: "a transfer (server not responding to keepalives)")
            default: return .transport(peer: peer, e.description)
            }
        case let e as WireError: return .protocolError(peer: peer, e)
        case let e as DaemonError: return .daemon(peer: peer, e)
        default: return .transport(peer: peer, "\(error)")
        }
    }
}
