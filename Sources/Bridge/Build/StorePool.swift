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
/// is discarded (closed), never given back. Stores with a limit (the destination) never
/// have more connections open at once: a taker waits for one to come back.
actor StorePool {
    private let opener: StoreOpener
    private let limits: [String: Int]
    private var idle: [String: [PooledStore]] = [:]
    /// Connections open per URI: idle or lent.
    private var open: [String: Int] = [:]
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    private var all: [PooledStore] = []

    /// - Parameter limits: the most connections open at once, by store URI.
    init(opener: StoreOpener, limits: [StoreURI: Int] = [:]) {
        self.opener = opener
        self.limits = Dictionary(limits.map { ($0.key.description, max(1, $0.value)) }, uniquingKeysWith: min)
    }

    func take(_ uri: StoreURI) async throws(StoreError) -> PooledStore {
        let key = uri.description
        while true {
            if var list = idle[key], let s = list.popLast() {
                idle[key] = list
                return s.again()
            }
            if let limit = limits[key], open[key, default: 0] >= limit {
                await withCheckedContinuation { waiters[key, default: []].append($0) }
                continue
            }
            open[key, default: 0] += 1
            do {
                let s = try PooledStore.make(opener: opener, uri: uri)
                all.append(s)
                return s
            } catch {
                released(key)
                throw error
            }
        }
    }

    func giveBack(_ s: PooledStore) {
        s.routeLogs(to: nil)
        idle[s.key, default: []].append(s)
        wakeOne(s.key)
    }

    /// Closes a connection that failed or was cancelled; its place is free again.
    func discard(_ s: PooledStore) async {
        if let i = all.firstIndex(where: { $0.store === s.store }) {
            all.remove(at: i)
            released(s.key)
        }
        await s.store.close()
    }

    private func released(_ key: String) {
        open[key, default: 1] -= 1
        wakeOne(key)
    }

    private func wakeOne(_ key: String) {
        guard var list = waiters[key], !list.isEmpty else { return }
        list.removeFirst().resume()
        waiters[key] = list
    }

    /// Closes every connection the pool opened, idle or still lent.
    func closeAll() async {
        let stores = all
        all = []
        idle = [:]
        for s in stores { await s.store.close() }
    }
}
