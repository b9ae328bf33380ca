import Logging

/// Milliseconds from `start` to `end`, as debug-log metadata: where a transaction's time went, phase by phase.
func elapsedMilliseconds(_ start: ContinuousClock.Instant, _ end: ContinuousClock.Instant) -> Logger.MetadataValue {
    "\((end - start) / .milliseconds(1))"
}

/// Named durations of a transaction's steps, summed per name, for its debug log: a finer profile than
/// the phases (what a statement took against the Swift around it).
struct StepTimings {
    private(set) var totals: [(String, Duration)] = []

    /// Adds `duration` to `name`'s total (a step run once per slice is summed).
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
