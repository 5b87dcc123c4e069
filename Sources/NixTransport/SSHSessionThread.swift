// The body of an SSHChannelStream's dedicated thread: connect, then pump bytes between the
// callers' queues and the libssh2 channel until closed or failed.
#if canImport(Glibc)
import Glibc
#endif

struct SSHSessionThread {
    let stream: SSHChannelStream
    var peer: String { stream.target.peerDescription }

    func run() {
        let failure = connectAndPump()
        let waiters = stream.shared.withLock { s in
            if let failure { s.failure = failure }
            s.finished = true
            defer { s.connectWaiter = nil; s.closeWaiters = [] }
            return (s.connectWaiter, s.closeWaiters)
        }
        if let failure { waiters.0?.resume(throwing: failure) }
        waiters.1.forEach { $0.resume() }
    }

    /// Returns once the session, its channel and its socket are gone (they live only in this
    /// frame), so a closed stream leaves nothing behind that still uses the descriptor.
    private func connectAndPump() -> SSHError? {
        let connector = SSHConnector(target: stream.target, command: stream.command, wake: stream.wake)
        let session: SSH2Session, channel: SSH2Channel
        do {
            (session, channel) = try connector.establish()
        } catch {
            return error
        }
        let waiter = stream.shared.withLock { s in
            s.cipher = session.negotiatedCipher
            s.mac = session.negotiatedMAC
            defer { s.connectWaiter = nil }
            return s.connectWaiter
        }
        waiter?.resume()
        // The channel holds its session, so libssh2 frees them in that order.
        var pump = Pump(stream: stream, session: session, channel: channel, fd: session.link.fd)
        pump.run()
        return nil
    }
}

/// The non-blocking I/O loop of one session.
struct Pump {
    let stream: SSHChannelStream
    let session: SSH2Session
    var channel: SSH2Channel
    let fd: Int32
    var current: SSHStreamState.Writer?
    var offset = 0
    var eofSent = false
    var eofReceived = false
    /// The transport failed or the server closed the connection: only the wake pipe is polled.
    var dead = false
    var lastProgress = ContinuousClock.now
    /// When the server last sent anything (data, or the replies to keepalives that libssh2
    /// reads by itself): what ServerAliveCountMax counts from.
    var lastServerTraffic = ContinuousClock.now
    var wasPending = false
    var scratch = [UInt8](repeating: 0, count: 64 << 10)

    init(stream: SSHChannelStream, session: SSH2Session, channel: SSH2Channel, fd: Int32) {
        self.stream = stream
        self.session = session
        self.channel = channel
        self.fd = fd
    }

    func error(_ reason: SSHError.Reason) -> SSHError { SSHError(peer: stream.target.peerDescription, reason: reason) }

    mutating func run() {
        while true {
            stream.wake.drain()
            let (closeRequested, closeWrite, space, hasReaders) = stream.shared.withLock { s in
                if current == nil, !s.writes.isEmpty { current = s.writes.removeFirst(); offset = 0 }
                return (s.closeRequested, s.closeWriteRequested && s.writes.isEmpty,
                        stream.target.readAheadLimit - s.buffered, !s.readers.isEmpty)
            }
            if closeRequested { return shutdown() }
            if dead { pollOnce(socket: false, pending: false); continue }
            var progress = false
            do throws(SSHError) {
                // Writes that go on mean the server keeps opening its window: it is alive too.
                if try pumpWrites() {
                    progress = true
                    lastServerTraffic = .now
                }
                if closeWrite, current == nil, !eofSent {
                    let rc = channel.sendEOF()
                    if rc == 0 { eofSent = true; progress = true } else if rc != SSH2.eagain { throw mapError(rc, "send EOF") }
                }
                // Every libssh2 read pulls in all packets the socket holds, also those for the
                // other stream (data, EOF): repeat until nothing is left queued inside libssh2,
                // or the poll below would sleep on a quiet socket with data waiting.
                var space = space
                for _ in 0..<64 {
                    let before = stream.shared.withLock { $0.buffered }
                    let r = try pumpReads(space: space)
                    let e = pumpStderr()
                    space -= stream.shared.withLock { $0.buffered } - before
                    if r || e { progress = true }
                    let more = (space > 0 && channel.hasQueuedData) || (!eofReceived && channel.remoteEOF)
                    if !r && !e && !more { break }
                    if space <= 0 && !e { break }
                }
            } catch {
                fail(error)
                continue
            }
            let pending = current != nil || hasReaders
            if pending && !wasPending { lastProgress = .now }
            wasPending = pending
            if progress {
                lastProgress = .now
                continue
            }
            if pending, let limit = stream.target.ioTimeout, ContinuousClock.now - lastProgress > limit {
                fail(error(.ioTimeout(seconds: limit.seconds)))
                continue
            }
            if let limit = serverAliveLimit, ContinuousClock.now - lastServerTraffic > limit {
                fail(error(.serverNotResponding(seconds: limit.seconds)))
                continue
            }
            pollOnce(socket: true, pending: pending)
        }
    }

    /// OpenSSH gives up once ServerAliveCountMax keepalives went unanswered: after
    /// ServerAliveInterval × (ServerAliveCountMax + 1) seconds without a byte from the server.
    var serverAliveLimit: Duration? {
        let t = stream.target
        guard t.serverAliveInterval > 0 else { return nil }
        return .seconds(t.serverAliveInterval * (max(t.serverAliveCountMax, 0) + 1))
    }

    /// Returns true if any bytes went out.
    mutating func pumpWrites() throws(SSHError) -> Bool {
        var progress = false
        while let w = current {
            let n = w.bytes.withUnsafeBytes { channel.write(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            if n == Int(SSH2.eagain) { break }
            if n < 0 { throw mapError(Int32(n), "write") }
            progress = true
            offset += n
            if offset == w.bytes.count {
                w.continuation.resume()
                current = stream.shared.withLock { s in s.writes.isEmpty ? nil : s.writes.removeFirst() }
                offset = 0
            }
        }
        return progress
    }

    /// Largest array libssh2 reads into (`SSHTarget.readChunk`).
    var readChunk: Int { stream.target.readChunk }

    mutating func pumpReads(space: Int) throws(SSHError) -> Bool {
        guard !eofReceived else { return false }
        var space = space, budget = 4 << 20, progress = false
        while space > 0 && budget > 0 {
            let want = min(space, readChunk)
            var n = 0
            // Read straight into the array that goes to the reader; a short read is copied
            // into an exact-size array so the read-ahead limit also bounds the memory held.
            var chunk = [UInt8](unsafeUninitializedCapacity: want) { buf, count in
                n = channel.read(into: UnsafeMutableRawBufferPointer(buf))
                count = max(n, 0)
            }
            if n > 0 {
                lastServerTraffic = .now
                if n < want / 2 { chunk = Array(chunk) }
                deliver(chunk, eof: false)
                space -= n
                budget -= n
                progress = true
                continue
            }
            if n < 0 && n != Int(SSH2.eagain) { throw mapError(Int32(n), "read") }
            if channel.remoteEOF {
                eofReceived = true
                deliver([], eof: true)
                progress = true
            }
            break
        }
        return progress
    }

    mutating func pumpStderr() -> Bool {
        var progress = false
        while true {
            let n = scratch.withUnsafeMutableBytes { channel.readStderr(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<65536])) }
            if n <= 0 {
                // A dead transport shows up here first when stdout is already at EOF.
                if n < 0 && n != Int(SSH2.eagain) && eofReceived {
                    fail(error(.peerClosed("server closed the connection")))
                }
                return progress
            }
            progress = true
            lastServerTraffic = .now
            let bytes = scratch[..<n]
            stream.shared.withLock { s in
                s.stderr += bytes
                if s.stderr.count > SSHChannelStream.stderrLimit { s.stderr.removeFirst(s.stderr.count - SSHChannelStream.stderrLimit) }
            }
        }
    }

    /// Appends data (or marks EOF) and completes waiting readers in order.
    func deliver(_ bytes: [UInt8], eof: Bool) {
        var done: [(CheckedContinuation<[UInt8], Error>, [UInt8])] = []
        stream.shared.withLock { s in
            s.append(bytes)
            if eof { s.eofReceived = true }
            while !s.readers.isEmpty && (s.buffered > 0 || s.eofReceived) {
                let r = s.readers.removeFirst()
                done.append((r.continuation, s.take(r.maxLength)))
            }
        }
        for (c, b) in done { c.resume(returning: b) }
    }

    func mapError(_ rc: Int32, _ what: String) -> SSHError {
        switch rc {
        case SSH2.channelClosed, SSH2.eofSent:
            return error(.peerClosed("channel closed during \(what): \(session.lastErrorMessage)"))
        default:
            return error(.peerClosed("\(what) failed: \(session.lastErrorMessage) (libssh2 error \(rc))"))
        }
    }

    /// Fails every waiting caller; the loop stays alive (polling the wake pipe) until close().
    mutating func fail(_ failure: SSHError) {
        dead = true
        let (readers, writers) = stream.shared.withLock { s in
            if s.failure == nil { s.failure = failure }
            defer { s.readers = []; s.writes = [] }
            return (s.readers, s.writes)
        }
        current?.continuation.resume(throwing: failure)
        current = nil
        readers.forEach { $0.continuation.resume(throwing: failure) }
        writers.forEach { $0.continuation.resume(throwing: failure) }
    }

    mutating func pollOnce(socket: Bool, pending: Bool) {
        var events = Int16(0)
        if socket {
            let dirs = session.blockDirections
            if dirs.inbound || !dirs.outbound { events |= Int16(POLLIN) }
            if dirs.outbound { events |= Int16(POLLOUT) }
        }
        var fds = [pollfd(fd: stream.wake.readFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: socket ? fd : -1, events: events, revents: 0)]
        var timeout: Int32 = -1
        if pending, let limit = stream.target.ioTimeout { timeout = Posix.pollTimeout(until: lastProgress + limit) }
        if socket, stream.target.serverAliveInterval > 0, let next = session.sendKeepalive() {
            let ms = Int32(clamping: max(next, 1) * 1000)
            timeout = timeout < 0 ? ms : min(timeout, ms)
        }
        if let limit = serverAliveLimit {
            let ms = Posix.pollTimeout(until: lastServerTraffic + limit)
            timeout = timeout < 0 ? ms : min(timeout, ms)
        }
        _ = poll(&fds, 2, timeout)
        if socket, fds[1].revents & Int16(POLLIN) != 0 { lastServerTraffic = .now }
        // A hung-up socket that libssh2 does not report as an error would spin; treat as dead.
        if socket, fds[1].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0, eofReceived {
            fail(error(.peerClosed("server closed the connection")))
        }
    }

    /// Graceful end: fail waiters, send EOF, close the channel, collect the exit status.
    mutating func shutdown() {
        let wasDead = dead
        fail(error(.closed))
        let deadline = ContinuousClock.now + .seconds(1)
        // A dead transport cannot close the channel; keep what the server already reported.
        var step = wasDead ? 3 : 0
        while step < 3 && ContinuousClock.now < deadline {
            let rc: Int32 = switch step {
            case 0: eofSent ? 0 : channel.sendEOF()
            case 1: channel.close()
            default: channel.waitClosed()
            }
            if rc == SSH2.eagain {
                pollSocket(until: deadline)
                continue
            }
            if rc != 0 { break }
            step += 1
        }
        let status = SSHExitStatus(code: channel.exitStatus, signal: channel.exitSignal)
        // libssh2 reports 0 when no exit-status arrived: trust it only after a full close.
        let known = (step == 3 && !wasDead) || status.signal != nil || status.code != 0
        stream.shared.withLock { s in s.exit = known ? status : nil }
        _ = session.disconnect("closed by nix-bridge")
    }

    func pollSocket(until deadline: ContinuousClock.Instant) {
        let dirs = session.blockDirections
        var fds = [pollfd(fd: fd, events: Int16(dirs.outbound ? POLLOUT : POLLIN), revents: 0)]
        _ = poll(&fds, 1, Posix.pollTimeout(until: deadline))
    }
}
