import Testing

@testable import Domains

@Suite struct TokenBucketTests {
    let second: UInt64 = 1_000_000_000

    @Test func allowsABurstThenLimits() {
        let limit = RateLimit(perMinute: 600, burstSeconds: 10)  // 10/s, bursts of 100
        #expect(limit.capacity == 100)
        var bucket = TokenBucket(capacity: limit.capacity, nowNanos: 0)
        for _ in 0..<100 {
            guard case .allowed = bucket.take(capacity: limit.capacity, ratePerSecond: limit.ratePerSecond, nowNanos: 0)
            else {
                Issue.record("limited inside the burst")
                return
            }
        }
        #expect(
            bucket.take(capacity: limit.capacity, ratePerSecond: limit.ratePerSecond, nowNanos: 0)
                == .limited(retryAfterSeconds: 1))
    }

    @Test func refillsAtTheRate() {
        let limit = RateLimit(perMinute: 60, burstSeconds: 1)  // 1/s, capacity 1
        var bucket = TokenBucket(capacity: limit.capacity, nowNanos: 0)
        #expect(bucket.take(capacity: 1, ratePerSecond: 1, nowNanos: 0) == .allowed(remaining: 0))
        #expect(bucket.take(capacity: 1, ratePerSecond: 1, nowNanos: second / 2) == .limited(retryAfterSeconds: 1))
        #expect(bucket.take(capacity: 1, ratePerSecond: 1, nowNanos: second + second / 2) == .allowed(remaining: 0))
    }

    @Test func retryAfterCoversTheWait() {
        // 6/min: one token every 10 s.
        var bucket = TokenBucket(capacity: 1, nowNanos: 0)
        _ = bucket.take(capacity: 1, ratePerSecond: 0.1, nowNanos: 0)
        #expect(bucket.take(capacity: 1, ratePerSecond: 0.1, nowNanos: 0) == .limited(retryAfterSeconds: 10))
    }

    @Test func fullBucketsAreForgettable() {
        var bucket = TokenBucket(capacity: 10, nowNanos: 0)
        _ = bucket.take(capacity: 10, ratePerSecond: 1, nowNanos: 0)
        #expect(!bucket.isFull(capacity: 10, ratePerSecond: 1, nowNanos: 0))
        #expect(bucket.isFull(capacity: 10, ratePerSecond: 1, nowNanos: 2 * second))
    }
}

@Suite struct DomainErrorTests {
    @Test func validationListsEveryPointer() {
        let error = DomainError.validation([
            FieldProblem(pointer: "/slug", message: "must not be empty"),
            FieldProblem(pointer: "/name", message: "must not be empty"),
        ])
        #expect(error.kind == .validation)
        #expect(error.code == "validation_failed")
        #expect(error.message == "/slug: must not be empty (and 1 more)")
        guard case .array(let errors)? = error.details["errors"] else {
            Issue.record("no errors array")
            return
        }
        #expect(errors.count == 2)
    }

    @Test func pointerTokensAreEscaped() {
        #expect(jsonPointerEscape("a/b~c") == "a~1b~0c")
    }
}

/// The finalize quota: at most N in any rolling window, all N at once if need be.
@Suite struct SlidingWindowLogTests {
    @Test func atMostTheLimitInAnyRollingWindow() {
        var log = SlidingWindowLog()
        let minute: UInt64 = 60_000_000_000
        let second: UInt64 = 1_000_000_000
        // The whole quota at once…
        for i in 0..<60 { #expect(log.take(limit: 60, windowNanos: minute, nowNanos: 10 * second) == .allowed(remaining: 59 - i)) }
        // …then nothing until the first of them is a minute old, and Retry-After says when.
        #expect(log.take(limit: 60, windowNanos: minute, nowNanos: 40 * second) == .limited(retryAfterSeconds: 30))
        #expect(log.take(limit: 60, windowNanos: minute, nowNanos: 70 * second - 1) == .limited(retryAfterSeconds: 1))
        #expect(log.take(limit: 60, windowNanos: minute, nowNanos: 70 * second) == .allowed(remaining: 59))
        #expect(!log.isEmpty(windowNanos: minute, nowNanos: 100 * second))
        #expect(log.isEmpty(windowNanos: minute, nowNanos: 131 * second))
    }

    @Test func spreadOutTheRateIsTheLimitPerWindow() {
        var log = SlidingWindowLog()
        let second: UInt64 = 1_000_000_000
        var allowed = 0
        // One attempt every 100 ms for 5 minutes against 60 per minute: exactly 300 pass.
        for tick in 0..<3000 {
            if case .allowed = log.take(limit: 60, windowNanos: 60 * second, nowNanos: UInt64(tick) * second / 10) { allowed += 1 }
        }
        #expect(allowed == 300)
    }
}
