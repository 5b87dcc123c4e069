import NixCore
import NixStore
import NixWire
import Synchronization

/// A store connection lent to one build at a time, with its log lines routed to that build.
final class PooledStore: Sendable {
    let store: RemoteStore
    let key: String
    /// True once it served a build before (a stale connection fails then, not the machine).
    let reused: Bool
    private let box: LogBox

    private init(store: RemoteStore, key: String, reused: Bool, box: LogBox) {
        self.store = store
        self.key = key
        self.reused = reused
        self.box = box
    }

    fileprivate static func make(opener: StoreOpener, uri: StoreURI) throws(StoreError) -> PooledStore {
        let box = LogBox()
        let store = try opener.store(uri) { event in box.handler.withLock { $0 }?(event) }
        return PooledStore(store: store, key: uri.description, reused: false, box: box)
    }

    /// The same connection, marked as reused.
    fileprivate func again() -> PooledStore { PooledStore(store: store, key: key, reused: true, box: box) }

    /// Sends this connection's log events to `handler` (nil: drop them).
    func routeLogs(to handler: (@Sendable (LogEvent) -> Void)?) { box.handler.withLock { $0 = handler } }
}

/// Where a connection's log events go; set per build.
final class LogBox: Sendable {
    let handler = Mutex<(@Sendable (LogEvent) -> Void)?>(nil)
}

/// Keeps idle connections between builds of one run, per store URI: opening an ssh-ng
/// connection costs a handshake (≈0.2 s), more than a small build. A connection that failed
/// is closed, never returned.
actor StorePool {
    private let opener: StoreOpener
    private var idle: [String: [PooledStore]] = [:]

    init(opener: StoreOpener) { self.opener = opener }

    func take(_ uri: StoreURI) throws(StoreError) -> PooledStore {
        if var list = idle[uri.description], let s = list.popLast() {
            idle[uri.description] = list
            return s.again()
        }
        return try PooledStore.make(opener: opener, uri: uri)
    }

    func giveBack(_ s: PooledStore) {
        s.routeLogs(to: nil)
        idle[s.key, default: []].append(s)
    }

    func closeAll() async {
        let all = idle.values.flatMap { $0 }
        idle = [:]
        for s in all { await s.store.close() }
    }
}
