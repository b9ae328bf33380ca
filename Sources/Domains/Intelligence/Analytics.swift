/// The daily series of `GET /v1/projects/:slug/analytics`, computed from per-day roll-up counts.
public enum AnalyticsMetric: String, Sendable, CaseIterable {
    /// passed ÷ (passed + failed + broken) of the day's results.
    case passrate
    /// failed + broken results of the day.
    case failures
    /// Mean run duration of the day (sum of its cases' durations), in milliseconds.
    case duration
    /// Share of the day's executed results that passed only on a retry.
    case flakiness
}

public enum AnalyticsWindow: String, Sendable, CaseIterable {
    case days7 = "7d"
    case days30 = "30d"
    case days90 = "90d"

    public var days: Int {
        switch self {
        case .days7: 7
        case .days30: 30
        case .days90: 90
        }
    }
}

/// One day's roll-up counts (across the branches asked for).
public struct DailyCounts: Sendable, Hashable {
    public var runs: Int
    public var passed: Int
    public var failed: Int
    public var broken: Int
    public var skipped: Int
    public var flaky: Int
    public var durationMs: Int64

    public init(runs: Int = 0, passed: Int = 0, failed: Int = 0, broken: Int = 0, skipped: Int = 0, flaky: Int = 0, durationMs: Int64 = 0) {
        self.runs = runs
        self.passed = passed
        self.failed = failed
        self.broken = broken
        self.skipped = skipped
        self.flaky = flaky
        self.durationMs = durationMs
    }

    public static func + (lhs: Self, rhs: Self) -> Self {
        DailyCounts(
            runs: lhs.runs + rhs.runs, passed: lhs.passed + rhs.passed, failed: lhs.failed + rhs.failed,
            broken: lhs.broken + rhs.broken, skipped: lhs.skipped + rhs.skipped, flaky: lhs.flaky + rhs.flaky,
            durationMs: lhs.durationMs + rhs.durationMs)
    }

    public var executed: Int { passed + failed + broken }
    public var failing: Int { failed + broken }

    /// passed ÷ executed, or nil without executed results.
    public var passRate: Double? { executed > 0 ? Double(passed) / Double(executed) : nil }

    /// The metric's value for the day; nil on a day without runs (a gap, not a zero).
    public func value(_ metric: AnalyticsMetric) -> Double? {
        guard runs > 0 else { return nil }
        switch metric {
        case .passrate: return passRate
        case .failures: return Double(failing)
        case .duration: return Double(durationMs) / Double(runs)
        case .flakiness: return executed > 0 ? Double(flaky) / Double(executed) : nil
        }
    }
}
