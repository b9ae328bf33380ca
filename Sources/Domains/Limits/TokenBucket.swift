/// A token bucket: `capacity` requests at once, refilled at `ratePerSecond`.
/// Pure state; callers own synchronization.
public struct TokenBucket: Sendable {
    public var tokens: Double
    public var updatedAtNanos: UInt64

    public init(capacity: Double, nowNanos: UInt64) {
        self.tokens = capacity
        self.updatedAtNanos = nowNanos
    }

    public enum Decision: Sendable, Equatable {
        case allowed(remaining: Int)
        /// Whole seconds until one token is available (at least 1, as `Retry-After` wants).
        case limited(retryAfterSeconds: Int)
    }

    public mutating func take(capacity: Double, ratePerSecond: Double, nowNanos: UInt64, cost: Double = 1)
        -> Decision
    {
        if nowNanos > updatedAtNanos {
            let elapsed = Double(nowNanos - updatedAtNanos) / 1e9
            tokens = min(capacity, tokens + elapsed * ratePerSecond)
            updatedAtNanos = nowNanos
        }
        if tokens >= cost {
            tokens -= cost
            return .allowed(remaining: Int(tokens))
        }
        let wait = (cost - tokens) / max(ratePerSecond, 1e-9)
        return .limited(retryAfterSeconds: max(1, Int(wait.rounded(.up))))
    }

    /// Whether a request could take a token now, without taking it.
    public mutating func peek(capacity: Double, ratePerSecond: Double, nowNanos: UInt64) -> Decision {
        take(capacity: capacity, ratePerSecond: ratePerSecond, nowNanos: nowNanos, cost: 1).undoing(&self)
    }

    /// True when the bucket would be full by `nowNanos`: such an entry can be forgotten.
    public func isFull(capacity: Double, ratePerSecond: Double, nowNanos: UInt64) -> Bool {
        let elapsed = nowNanos > updatedAtNanos ? Double(nowNanos - updatedAtNanos) / 1e9 : 0
        return tokens + elapsed * ratePerSecond >= capacity
    }
}

extension TokenBucket.Decision {
    /// Puts back the token an allowed `take` took (for `peek`).
    fileprivate func undoing(_ bucket: inout TokenBucket) -> Self {
        if case .allowed = self { bucket.tokens += 1 }
        return self
    }
}

/// A per-minute limit smoothed into a bucket: the rate is `perMinute / 60` per second and
/// the burst is `burstSeconds` worth of it (so 600/min with 10 s bursts allows 100 at once).
public struct RateLimit: Sendable, Equatable {
    public var perMinute: Int
    public var burstSeconds: Double

    public init(perMinute: Int, burstSeconds: Double = 10) {
        self.perMinute = perMinute
        self.burstSeconds = burstSeconds
    }

    public var ratePerSecond: Double { Double(perMinute) / 60 }
    public var capacity: Double { max(1, ratePerSecond * burstSeconds) }
}
