/// Told, in process, what the lookup layer and the fleet view do with each store: for
/// `serve`'s metrics. Each closure is called on the task doing the work, so it must be cheap.
public struct FleetObserver: Sendable {
    /// `count` NAR bytes arrived from `store` (served or prefetched).
    public var narBytes: @Sendable (_ store: String, _ count: Int) -> Void
    /// Asking `store`, or a NAR transfer from it, failed; `timedOut` when it was a timeout.
    public var storeFailed: @Sendable (_ store: String, _ timedOut: Bool) -> Void
    /// A lookup had `hits` paths of `store` answered by the narinfo cache and asked it about `misses`.
    public var cacheAnswered: @Sendable (_ store: String, _ hits: Int, _ misses: Int) -> Void
    /// `store` answered a lookup's questions (QueryValidPaths and QueryPathInfo) in `seconds`.
    public var storeAnswered: @Sendable (_ store: String, _ seconds: Double) -> Void

    public init(narBytes: @escaping @Sendable (String, Int) -> Void = { _, _ in },
                storeFailed: @escaping @Sendable (String, Bool) -> Void = { _, _ in },
                cacheAnswered: @escaping @Sendable (String, Int, Int) -> Void = { _, _, _ in },
                storeAnswered: @escaping @Sendable (String, Double) -> Void = { _, _ in }) {
        self.narBytes = narBytes
        self.storeFailed = storeFailed
        self.cacheAnswered = cacheAnswered
        self.storeAnswered = storeAnswered
    }

    /// Seconds since `start`.
    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
