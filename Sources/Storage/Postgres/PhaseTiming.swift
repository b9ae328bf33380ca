import Logging

/// Milliseconds from `start` to `end`, as debug-log metadata: where a transaction's time went, phase by phase.
func elapsedMilliseconds(_ start: ContinuousClock.Instant, _ end: ContinuousClock.Instant) -> Logger.MetadataValue {
    "\((end - start) / .milliseconds(1))"
}

/// Named durations of a transaction's steps, summed per name, for its debug log: a finer profile than
/// the phases (what a statement took against the Swift around it).
struct StepTimings {
    private let clock = ContinuousClock()
    private(set) var totals: [(String, Duration)] = []

    /// Runs `body` and adds its time to `name`'s total.
    mutating func measure<T>(_ name: String, _ body: () async throws -> T) async rethrows -> T {
        let start = clock.now
        defer { add(name, clock.now - start) }
        return try await body()
    }

    mutating func add(_ name: String, _ duration: Duration) {
        if let index = totals.firstIndex(where: { $0.0 == name }) {
            totals[index].1 += duration
        } else {
            totals.append((name, duration))
        }
    }

    /// "name=ms name=ms …" in the order the steps first ran.
    var summary: Logger.MetadataValue {
        .string(totals.map { "\($0.0)=\($0.1 / .milliseconds(1))" }.joined(separator: " "))
    }
}
