import Logging

/// Milliseconds from `start` to `end`, as debug-log metadata: where a transaction's time went, phase by phase.
func elapsedMilliseconds(_ start: ContinuousClock.Instant, _ end: ContinuousClock.Instant) -> Logger.MetadataValue {
    "\((end - start) / .milliseconds(1))"
}

/// Named durations of a transaction's steps, summed per name, for its debug log: a finer profile than
/// the phases (what a statement took against the Swift around it). A step is timed as a lap: from `start()`
/// or the previous `lap` to its own.
struct StepTimings {
    private(set) var totals: [(String, Duration)] = []
    private var mark = ContinuousClock.now

    /// Starts timing the next step here (what ran since the last lap belongs to no step).
    mutating func start() { mark = ContinuousClock.now }

    /// Adds the time since `start()` or the previous lap to `name`'s total (a step run once per slice is summed).
    mutating func lap(_ name: String) {
        let now = ContinuousClock.now
        if let index = totals.firstIndex(where: { $0.0 == name }) {
            totals[index].1 += now - mark
        } else {
            totals.append((name, now - mark))
        }
        mark = now
    }

    /// "name=ms name=ms …" in the order the steps first ran.
    var summary: Logger.MetadataValue {
        .string(totals.map { "\($0.0)=\($0.1 / .milliseconds(1))" }.joined(separator: " "))
    }
}
