import Domains
import Synchronization

/// Throttles failed sign-ins (and redeemed links and invitations, which also test a secret) per account
/// and per client address: token buckets of failures, refilled slowly. A request is refused (429 with
/// `Retry-After`) before the password is even compared once either bucket is empty.
public final class SignInThrottle: Sendable {
    let accounts = Mutex<[String: TokenBucket]>([:])
    let addresses = Mutex<[String: TokenBucket]>([:])
    let accountBurst: Double
    let addressBurst: Double
    let ratePerSecond: Double
    /// Monotonic nanoseconds; injected by tests.
    let clock: @Sendable () -> UInt64
    /// Beyond this many tracked keys, full buckets are forgotten (they behave like new ones).
    let maxKeys = 100_000

    public init(
        accountBurst: Int, addressBurst: Int, refillPerMinute: Double,
        clock: @escaping @Sendable () -> UInt64 = { Clock.monotonicNanoseconds() }
    ) {
        self.accountBurst = Double(max(1, accountBurst))
        self.addressBurst = Double(max(1, addressBurst))
        self.ratePerSecond = max(refillPerMinute, 0.001) / 60
        self.clock = clock
    }

    /// Nil when an attempt may go ahead; else the seconds to wait. Without an account (a link or an
    /// invitation, whose secret is what is guessed), only the address counts.
    public func retryAfter(account: String?, address: String?) -> Int? {
        let now = clock()
        var waits: [Int] = []
        if let account, case .limited(let wait) = peek(accounts, account.lowercased(), burst: accountBurst, now: now) {
            waits.append(wait)
        }
        if let address, case .limited(let wait) = peek(addresses, address, burst: addressBurst, now: now) { waits.append(wait) }
        return waits.max()
    }

    /// Counts one failed attempt against the account and the address.
    public func recordFailure(account: String?, address: String?) {
        let now = clock()
        if let account { take(accounts, account.lowercased(), burst: accountBurst, now: now) }
        if let address { take(addresses, address, burst: addressBurst, now: now) }
    }

    private func peek(_ table: borrowing Mutex<[String: TokenBucket]>, _ key: String, burst: Double, now: UInt64) -> TokenBucket.Decision {
        let rate = ratePerSecond
        return table.withLock { buckets in
            guard var bucket = buckets[key] else { return .allowed(remaining: Int(burst)) }
            let decision = bucket.peek(capacity: burst, ratePerSecond: rate, nowNanos: now)
            buckets[key] = bucket
            return decision
        }
    }

    private func take(_ table: borrowing Mutex<[String: TokenBucket]>, _ key: String, burst: Double, now: UInt64) {
        let rate = ratePerSecond
        let maxKeys = self.maxKeys
        table.withLock { buckets in
            if buckets.count >= maxKeys {
                buckets = buckets.filter { !$0.value.isFull(capacity: burst, ratePerSecond: rate, nowNanos: now) }
            }
            _ = buckets[key, default: TokenBucket(capacity: burst, nowNanos: now)]
                .take(capacity: burst, ratePerSecond: rate, nowNanos: now)
        }
    }
}
