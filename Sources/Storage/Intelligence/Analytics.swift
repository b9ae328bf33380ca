import Domains
import Foundation
import Logging
import PostgresNIO

/// A project's total over a window, for the overview's ranking.
public struct ProjectWindowTotals: Sendable, Hashable {
    public let projectID: String
    public let counts: DailyCounts
}

extension TenantStore {
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

    /// The newest runs of the given projects (ids are time-ordered ULIDs, so the primary key serves).
    public func recentRuns(projectIDs: [String], limit: Int) async throws -> [RunRecord] {
        var binds = PostgresBindings()
        binds.append(workspaceID)
        binds.append(projectIDs)
        binds.append(limit)
        return try await runs("project_id = ANY($2::text[])", binds, suffix: "ORDER BY id DESC LIMIT $3")
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
