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

    public var peer: String {
        switch self {
        case let .daemon(p, _), let .protocolError(p, _), let .transport(p, _), let .closed(p),
             let .closedDuringHandshake(p, _), let .sink(p, _), let .unexpectedResponse(p, _), let .busy(p),
             let .aborted(p, _):
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
        }
    }

    static func wrap(_ error: any Error, peer: String) -> StoreError {
        switch error {
        case let e as StoreError: return e
        case let e as WireError: return .protocolError(peer: peer, e)
        case let e as DaemonError: return .daemon(peer: peer, e)
        case let e as SSHError: return .transport(peer: peer, e.description)
        default: return .transport(peer: peer, "\(error)")
        }
    }
}
