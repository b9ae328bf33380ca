/// At most `limit` events in any rolling `windowNanos`: the times of the last `limit` allowed events
/// are kept, and one more is allowed when the oldest of them has left the window. All `limit` may
/// come at once (the burst is the whole quota); after that, one more each time one ages out.
/// Pure state; callers own synchronization and the clock.
public struct SlidingWindowLog: Sendable {
    /// Times of allowed events, oldest first; never more than the limit.
    private var times: [UInt64] = []

    public init() {}

    public enum Decision: Sendable, Equatable {
        case allowed(remaining: Int)
        /// Whole seconds until the oldest event leaves the window (at least 1, as `Retry-After` wants).
        case limited(retryAfterSeconds: Int)
    }

    public mutating func take(limit: Int, windowNanos: UInt64, nowNanos: UInt64) -> Decision {
        // An event stays in the window while it is younger than the window.
        let expired = times.prefix { $0 &+ windowNanos <= nowNanos }.count
        if expired > 0 { times.removeFirst(expired) }
        if times.count < max(1, limit) {
            times.append(nowNanos)
            return .allowed(remaining: max(1, limit) - times.count)
        }
        let freeAt = times[0] &+ windowNanos
        let wait = freeAt > nowNanos ? freeAt - nowNanos : 0
        return .limited(retryAfterSeconds: max(1, Int((wait + 999_999_999) / 1_000_000_000)))
    }

    /// True when no event is left in the window: the entry can be forgotten.
    public func isEmpty(windowNanos: UInt64, nowNanos: UInt64) -> Bool {
        guard let last = times.last else { return true }
        return nowNanos >= last &+ windowNanos
    }
}
