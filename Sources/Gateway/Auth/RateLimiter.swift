import Domains
import Synchronization

/// Token buckets per token, one limit per token class.
///
/// Buckets live in 64 stripes, each behind its own lock held only for the arithmetic of one
/// decision (no allocation, no await), so concurrent requests of different tokens almost never
/// contend. Full buckets are forgotten by `sweep`, which bounds memory by the active tokens.
public final class RateLimiter: Sendable {
    final class Stripe: Sendable {
        let buckets = Mutex<[String: TokenBucket]>([:])
    }

    public let userLimit: RateLimit
    public let workspaceLimit: RateLimit
    let stripes: [Stripe] = (0..<64).map { _ in Stripe() }
    /// Monotonic nanoseconds; injected by tests so that limits do not depend on the machine's speed.
    public let clock: @Sendable () -> UInt64

    public init(
        user: RateLimit, workspace: RateLimit, clock: @escaping @Sendable () -> UInt64 = { Clock.monotonicNanoseconds() }
    ) {
        self.userLimit = user
        self.workspaceLimit = workspace
        self.clock = clock
    }

    public func limit(for tokenClass: TokenClass) -> RateLimit {
        switch tokenClass {
        case .user: userLimit
        case .workspace: workspaceLimit
        }
    }

    /// Takes one token from the caller's bucket.
    public func decide(tokenID: String, tokenClass: TokenClass, nowNanos: UInt64? = nil) -> TokenBucket.Decision {
        let nowNanos = nowNanos ?? clock()
        let limit = self.limit(for: tokenClass)
        let capacity = limit.capacity
        let rate = limit.ratePerSecond
        let stripe = stripes[Int(UInt(bitPattern: tokenID.hashValue) % UInt(stripes.count))]
        return stripe.buckets.withLock { buckets in
            buckets[tokenID, default: TokenBucket(capacity: capacity, nowNanos: nowNanos)]
                .take(capacity: capacity, ratePerSecond: rate, nowNanos: nowNanos)
        }
    }

    /// Forgets buckets that have refilled completely: they behave exactly like new ones.
    @discardableResult
    public func sweep(nowNanos: UInt64? = nil) -> Int {
        let nowNanos = nowNanos ?? clock()
        var removed = 0
        // Conservative for both classes: a bucket is dropped only once it would be full under either.
        let largest = max(userLimit.capacity, workspaceLimit.capacity)
        let slowest = min(userLimit.ratePerSecond, workspaceLimit.ratePerSecond)
        for stripe in stripes {
            stripe.buckets.withLock { buckets in
                for (key, bucket) in buckets where bucket.isFull(capacity: largest, ratePerSecond: slowest, nowNanos: nowNanos) {
                    buckets[key] = nil
                    removed += 1
                }
            }
        }
        return removed
    }

    public var trackedBuckets: Int { stripes.reduce(0) { $0 + $1.buckets.withLock { $0.count } } }
}
