import Synchronization
import NixCore
import NixTransport
import NixWire

/// Serves the worker protocol on a byte stream (stdin/stdout for `--stdio`, a socket),
/// one request at a time in the order the client sent them, as Nix's daemon does.
public enum StoreServer {
    /// How a connection ended.
    public enum Ending: Sendable, Equatable {
        /// The client closed the stream.
        case clientClosed
        /// The server hung up after a fatal error (described).
        case error(String)
    }

    /// Serves until the client closes the stream or a fatal error, then closes the stream
    /// (a client waiting for the rest of a NAR sees it end); never throws.
    /// - Parameters:
    ///   - info: what the handshake tells the client (our Nix version, its trust).
    ///   - stalledClientTimeout: a client that reads nothing of a NAR for this long is
    ///     disconnected (`ClientStallWatch`); nil waits forever.
    ///   - log: diagnostics (never to the stream).
    public static func serve(_ stream: any ByteStream, backend: some StoreServerBackend,
                             info: ClientHandshakeInfo, version: WorkerProtocolVersion = .latest,
                             storeDir: StoreDirectory = .default, stalledClientTimeout: Duration? = nil,
                             log: @escaping @Sendable (String) -> Void = { _ in }) async -> Ending {
        let ending = await serveUntilDone(stream, backend: backend, info: info, version: version, storeDir: storeDir,
                                          stalledClientTimeout: stalledClientTimeout, log: log)
        await stream.close()
        return ending
    }

    private static func serveUntilDone(_ stream: any ByteStream, backend: some StoreServerBackend,
                                       info: ClientHandshakeInfo, version: WorkerProtocolVersion,
                                       storeDir: StoreDirectory, stalledClientTimeout: Duration?,
                                       log: @escaping @Sendable (String) -> Void) async -> Ending {
        var server = WorkerServer(ours: version, info: info, storeDir: storeDir, streamedOps: backend.streamedOps)
        var out: [UInt8] = []
        // The streamed request being received: its data and the backend working on it.
        var upload: (request: WorkerRequest, data: IncomingData, answer: Task<WorkerResponse, any Error>)?
        defer {
            if let upload {
                let data = upload.data
                Task { await data.cutShort() }
            }
        }
        do {
            while true {
                let chunk = try await stream.read(maxLength: 256 << 10)
                if chunk.isEmpty {
                    try await flush(&out, stream)
                    return .clientClosed
                }
                for action in try server.receive(chunk) {
                    switch action {
                    case let .write(bytes):
                        out += bytes
                    case .handshakeCompleted:
                        break
                    case let .streamedRequest(request):
                        try await flush(&out, stream)
                        let data = IncomingData()
                        upload = (request, data, Task {
                            defer { Task { await data.abandon() } }
                            return try await perform(request, data: data, on: backend)
                        })
                    case let .data(bytes):
                        await upload?.data.send(bytes)
                    case .dataEnd:
                        guard let (request, data, answer) = upload else { continue }
                        upload = nil
                        await data.finish()
                        do {
                            out += try server.reply(try await answer.value, for: request.op)
                        } catch {
                            out += server.failure(daemonError(error))
                        }
                        try await flush(&out, stream)
                    case .close:
                        try await flush(&out, stream)
                        return .error("closed after a fatal protocol error")
                    case let .request(request):
                        try await flush(&out, stream)
                        if case let .narFromPath(path) = request {
                            if let ending = try await sendNAR(path, server: server, backend: backend, stream: stream,
                                                              stalledClientTimeout: stalledClientTimeout) {
                                log("NarFromPath \(storeDir.print(path)): \(ending)")
                                return .error(ending)
                            }
                            continue
                        }
                        do {
                            out += try server.reply(try await perform(request, data: nil, on: backend), for: request.op)
                        } catch {
                            out += server.failure(daemonError(error))
                        }
                        try await flush(&out, stream)
                    }
                }
                try await flush(&out, stream)
            }
        } catch {
            log("connection ended: \(error)")
            return .error("\(error)")
        }
    }

    /// Sends STDERR_LAST and the NAR, or an error if none of it could be sent. Returns why the
    /// connection must end, if it must.
    private static func sendNAR(_ path: StorePath, server: WorkerServer, backend: some StoreServerBackend,
                                stream: any ByteStream, stalledClientTimeout: Duration?) async throws -> String? {
        let started = StartFlag()
        let header = server.narHeader()
        let watch = stalledClientTimeout.map(ClientStallWatch.init)
        let watching = watch?.watch(stream)
        defer { watching?.cancel() }
        do {
            try await backend.narFromPath(path) { bytes in
                let out = started.set() ? header + bytes : bytes
                if let watch { try await watch.write(out, to: stream) } else { try await stream.write(out) }
            }
            return nil
        } catch {
            if started.isSet { return "\(error)" }
            try await stream.write(server.failure(daemonError(error)))
            return nil
        }
    }

    private static func flush(_ out: inout [UInt8], _ stream: any ByteStream) async throws {
        guard !out.isEmpty else { return }
        let bytes = out
        out = []
        try await stream.write(bytes)
    }

    static func daemonError(_ error: any Error) -> DaemonError {
        if let e = error as? DaemonError { return e }
        return DaemonError(message: "\(error)")
    }
}

/// Whether the first chunk of a NAR went out (set from the sink, read after it).
private final class StartFlag: Sendable {
    private let value = Mutex(false)
    /// Sets the flag; true if it was not set before.
    func set() -> Bool { value.withLock { v in defer { v = true }; return !v } }
    var isSet: Bool { value.withLock { $0 } }
}
