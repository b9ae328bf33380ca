/// The status of a case's final attempt (or of a step).
public enum CaseStatus: String, Sendable, CaseIterable, Codable {
    case passed, failed, skipped, broken

    /// Failed assertions and broken (errored) tests both count as failing for regression. The one place
    /// that says so: SQL binds `failingValues` rather than repeating the list.
    public var isFailing: Bool { self == .failed || self == .broken }

    /// The raw values of the failing statuses, for queries.
    public static let failingValues: [String] = allCases.filter(\.isFailing).map(\.rawValue)
}

/// Counts by final status, plus cases that passed only after a failed attempt.
public struct RunTotals: Sendable, Hashable, Codable {
    public var passed = 0
    public var failed = 0
    public var skipped = 0
    public var broken = 0
    public var flaky = 0

    public init() {}

    public init(passed: Int, failed: Int, skipped: Int, broken: Int, flaky: Int) {
        self.passed = passed
        self.failed = failed
        self.skipped = skipped
        self.broken = broken
        self.flaky = flaky
    }

    public var total: Int { passed + failed + skipped + broken }

    public mutating func count(_ status: CaseStatus, flaky isFlaky: Bool) {
        switch status {
        case .passed: passed += 1
        case .failed: failed += 1
        case .skipped: skipped += 1
        case .broken: broken += 1
        }
        if isFlaky { flaky += 1 }
    }

    /// Share of passed among cases that ran (skipped excluded); nil when none ran.
    public var passRate: Double? {
        let ran = passed + failed + broken
        return ran == 0 ? nil : Double(passed) / Double(ran)
    }
}
