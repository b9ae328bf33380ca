import Benchmark
import Domains
import Gateway
import Synchronization

/// The cost of the per-request limit decision, and the limit it is compared with in the same run:
/// one uncontended lock around a dictionary update, the least any shared per-token state could cost.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    let limiter = RateLimiter(
        user: RateLimit(perMinute: 600), workspace: RateLimit(perMinute: 1_000_000_000))

    Benchmark("Limit: baseline (Mutex + dictionary increment)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let state = Mutex<[String: Int]>([:])
        let key = "tok_01jd3xk8r9m2v4q6t8w0y2a4c6"
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            state.withLock { $0[key, default: 0] += 1 }
        }
    }

    Benchmark("Limit: RateLimiter.decide, one token", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let token = "tok_01jd3xk8r9m2v4q6t8w0y2a4c6"
        for _ in benchmark.scaledIterations {
            blackHole(limiter.decide(tokenID: token, tokenClass: .workspace))
        }
    }

    Benchmark("Limit: RateLimiter.decide, 10k tokens", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let tokens = (0..<10_000).map { "tok_\($0)" }
        benchmark.startMeasurement()
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(limiter.decide(tokenID: tokens[index], tokenClass: .workspace))
            index = index == tokens.count - 1 ? 0 : index + 1
        }
    }

    Benchmark("Limit: RateLimiter.decide, 2 threads contending", configuration: .init(scalingFactor: .kilo)) {
        benchmark in
        let tokens = (0..<1_000).map { "tok_\($0)" }
        let perTask = benchmark.scaledIterations.count / 2
        benchmark.startMeasurement()
        await withTaskGroup(of: Void.self) { group in
            for offset in 0..<2 {
                group.addTask {
                    var index = offset
                    for _ in 0..<perTask {
                        blackHole(limiter.decide(tokenID: tokens[index], tokenClass: .workspace))
                        index = (index + 2) % tokens.count
                    }
                }
            }
        }
    }

    Benchmark("Auth: SHA-256 of a bearer secret", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let secret = TokenSecret.generate()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(TokenSecret.hash(secret))
        }
    }
}
