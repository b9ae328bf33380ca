import Domains

/// Trends from the daily roll-up.
public protocol AnalyticsRepository: Sendable {
    /// Per-day counts over the last `days` UTC days (today included); days without runs are absent.
    func dailyCounts(projectIDs: [String], days: Int, branch: String?) async throws -> [String: DailyCounts]
    func projectTotals(projectIDs: [String], days: Int) async throws -> [ProjectWindowTotals]
    /// Flaky case counts per project.
    func flakyCounts() async throws -> [String: Int]
}
