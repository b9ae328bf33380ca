import Domains
import Foundation
import Logging
import PostgresNIO

/// A project's headline numbers, read from runs and the post-ingest roll-ups (never raw results).
public struct ProjectStatsRecord: Sendable, Hashable {
    public let lastRunAt: Date?
    /// Passed ÷ (passed + failed + broken) over the last 30 days of daily roll-ups; nil without runs.
    public let passRate30d: Double?
    /// Cases the flakiness scoring currently calls flaky.
    public let flakyCount: Int
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
}

extension TenantStore {
    /// Stats of every project of the workspace, by project id, in one query.
    public func projectStats() async throws -> [String: ProjectStatsRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var result: [String: ProjectStatsRecord] = [:]
            let rows = try await connection.query(
                """
                SELECT p.id,
                       (SELECT r.created_at FROM runs r WHERE r.workspace_id = p.workspace_id AND r.project_id = p.id
                        ORDER BY r.seq DESC LIMIT 1),
                       (SELECT sum(d.passed)::float8 / NULLIF(sum(d.passed + d.failed + d.broken), 0)
                        FROM project_daily d
                        WHERE d.workspace_id = p.workspace_id AND d.project_id = p.id
                          AND d.day >= (now() AT TIME ZONE 'UTC')::date - 29),
                       (SELECT count(*)::int FROM case_stats s
                        WHERE s.workspace_id = p.workspace_id AND s.project_id = p.id AND s.is_flaky)
                FROM projects p WHERE p.workspace_id = \(ws)
                """, logger: logger)
            for try await (id, last, rate, flaky) in rows.decode((String, Date?, Double?, Int).self) {
                result[id] = ProjectStatsRecord(lastRunAt: last, passRate30d: rate, flakyCount: flaky)
            }
            return result
        }
    }

    public func projectHistory(projectID: String, topSuites: Int = 5) async throws -> ProjectHistoryRecord {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var first: Date?
            var last: Date?
            var count = 0
            for try await (f, l, c) in try await connection.query(
                "SELECT min(created_at), max(created_at), count(*)::int FROM runs WHERE workspace_id = \(ws) AND project_id = \(projectID)",
                logger: logger
            ).decode((Date?, Date?, Int).self) {
                (first, last, count) = (f, l, c)
            }
            var suites: [(String, Int)] = []
            for try await (suite, failures) in try await connection.query(
                """
                SELECT COALESCE(c.suite, ''), sum(s.failed + s.broken)::int AS failures
                FROM case_stats s JOIN cases c ON c.workspace_id = s.workspace_id AND c.id = s.case_id
                WHERE s.workspace_id = \(ws) AND s.project_id = \(projectID)
                GROUP BY 1 HAVING sum(s.failed + s.broken) > 0 ORDER BY 2 DESC, 1 LIMIT \(topSuites)
                """, logger: logger
            ).decode((String, Int).self) {
                suites.append((suite, failures))
            }
            return ProjectHistoryRecord(firstRunAt: first, lastRunAt: last, runCount: count, topFailingSuites: suites)
        }
    }
}
