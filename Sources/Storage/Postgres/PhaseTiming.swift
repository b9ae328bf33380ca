import Logging

/// Milliseconds from `start` to `end`, as debug-log metadata: where a transaction's time went, phase by phase.
func elapsedMilliseconds(_ start: ContinuousClock.Instant, _ end: ContinuousClock.Instant) -> Logger.MetadataValue {
    "\((end - start) / .milliseconds(1))"
}
