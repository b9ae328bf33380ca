import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// Trends of a workspace from the daily roll-up, in PostgreSQL.
public struct PostgresAnalyticsRepository: AnalyticsRepository {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    public init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    /// Per-day counts of the given projects over the last `days` UTC days (today included), from the
    /// daily roll-up; days without runs are absent. `branch` nil means all branches.
    public func dailyCounts(projectIDs: [String], days: Int, branch: String?) async throws -> [String: DailyCounts] {
        let (logger, ws) = (self.logger, workspaceID)
        let branch = branch ?? ""
        return try await server.run { connection in
            var out: [String: DailyCounts] = [:]
            for try await row in try await connection.query(
                """
                SELECT to_char(day, 'YYYY-MM-DD'), sum(runs)::int, sum(passed)::int, sum(failed)::int, sum(broken)::int,
                       sum(skipped)::int, sum(flaky)::int, sum(duration_ms)::int8
                FROM project_daily
                WHERE workspace_id = \(ws) AND project_id = ANY(\(projectIDs)::text[])
                  AND day > (now() AT TIME ZONE 'UTC')::date - \(days)::int AND (\(branch) = '' OR branch = \(branch))
                GROUP BY day
                """, logger: logger
            ).decode((String, Int, Int, Int, Int, Int, Int, Int64).self) {
                out[row.0] = DailyCounts(
                    runs: row.1, passed: row.2, failed: row.3, broken: row.4, skipped: row.5, flaky: row.6, durationMs: row.7)
            }
            return out
        }
    }

    /// Each project's totals over the last `days` UTC days.
    public func projectTotals(projectIDs: [String], days: Int) async throws -> [ProjectWindowTotals] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var out: [ProjectWindowTotals] = []
            for try await row in try await connection.query(
                """
                SELECT project_id, sum(runs)::int, sum(passed)::int, sum(failed)::int, sum(broken)::int, sum(skipped)::int,
                       sum(flaky)::int, sum(duration_ms)::int8
                FROM project_daily
                WHERE workspace_id = \(ws) AND project_id = ANY(\(projectIDs)::text[])
                  AND day > (now() AT TIME ZONE 'UTC')::date - \(days)::int
                GROUP BY project_id
                """, logger: logger
            ).decode((String, Int, Int, Int, Int, Int, Int, Int64).self) {
                out.append(
                    ProjectWindowTotals(
                        projectID: row.0,
                        counts: DailyCounts(
                            runs: row.1, passed: row.2, failed: row.3, broken: row.4, skipped: row.5, flaky: row.6,
                            durationMs: row.7)))
            }
            return out
        }
    }

    /// Flaky case counts per project.
    public func flakyCounts() async throws -> [String: Int] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var out: [String: Int] = [:]
            for try await (project, count) in try await connection.query(
                "SELECT project_id, count(*)::int FROM case_stats WHERE workspace_id = \(ws) AND is_flaky GROUP BY project_id",
                logger: logger
            ).decode((String, Int).self) {
                out[project] = count
            }
            return out
        }
    }
}
