import Foundation

/// A project's headline numbers, read from runs and the post-ingest roll-ups (never raw results).
public struct ProjectStatsRecord: Sendable, Hashable {
    public let lastRunAt: Date?
    /// Passed ÷ (passed + failed + broken) over the last 30 days of daily roll-ups; nil without runs.
    public let passRate30d: Double?
    /// Cases the flakiness scoring currently calls flaky.
    public let flakyCount: Int

    public init(lastRunAt: Date?, passRate30d: Double?, flakyCount: Int) {
        self.lastRunAt = lastRunAt
        self.passRate30d = passRate30d
        self.flakyCount = flakyCount
    }
}

public struct ProjectHistoryRecord: Sendable, Hashable {
    public let firstRunAt: Date?
    public let lastRunAt: Date?
    public let runCount: Int
    /// Suites by failed + broken results, from the case roll-ups, most failing first.
    public let topFailingSuites: [(suite: String, failures: Int)]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.firstRunAt == rhs.firstRunAt && lhs.lastRunAt == rhs.lastRunAt && lhs.runCount == rhs.runCount
            && lhs.topFailingSuites.map(\.suite) == rhs.topFailingSuites.map(\.suite)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(runCount) }

    public init(
        firstRunAt: Date?, lastRunAt: Date?, runCount: Int, topFailingSuites: [(suite: String, failures: Int)]
    ) {
        self.firstRunAt = firstRunAt
        self.lastRunAt = lastRunAt
        self.runCount = runCount
        self.topFailingSuites = topFailingSuites
    }
}

/// A project's total over a window, for the overview's ranking.
public struct ProjectWindowTotals: Sendable, Hashable {
    public let projectID: String
    public let counts: DailyCounts

    public init(projectID: String, counts: DailyCounts) {
        self.projectID = projectID
        self.counts = counts
    }
}
