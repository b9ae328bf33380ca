import Domains
import Foundation
import Logging
import PostgresNIO

/// A job of the durable post-ingest queue.
public struct JobRecord: Sendable, Hashable {
    public let workspaceID: String
    public let id: String
    public let kind: String
    public let payload: String
    public let state: String
    public let attempts: Int
    public let maxAttempts: Int
    public let runAfter: Date
    public let lastError: String?
    public let createdAt: Date
}

/// The queue on one physical server. Jobs are enqueued in the transaction that creates their subject
/// (a run), claimed with `FOR UPDATE SKIP LOCKED` so workers on several nodes never take the same
/// job, retried with exponential backoff, and left `dead` with their last error after `max_attempts`.
public struct JobQueue: Sendable {
    public let server: PhysicalServer
    let logger: Logger

    public init(server: PhysicalServer, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    public static let rollupKind = "run.rollup"

    /// Enqueues on an open connection (inside the caller's transaction).
    static func enqueue(
        workspaceID: String, kind: String, payload: String, on connection: PostgresConnection, logger: Logger
    ) async throws {
        let id = ResourceID.make(.job)
        try await connection.query(
            """
            INSERT INTO jobs (workspace_id, id, kind, payload) VALUES (\(workspaceID), \(id), \(kind), \(payload)::jsonb)
            """, logger: logger)
    }

    /// Claims up to `limit` due jobs, marking them running; also takes back jobs whose worker vanished.
    public func claim(limit: Int, staleAfterSeconds: Int = 300) async throws -> [JobRecord] {
        let logger = self.logger
        return try await server.transaction { connection in
            try await connection.query(
                """
                UPDATE jobs SET state = 'queued', locked_at = NULL, updated_at = now()
                WHERE state = 'running' AND locked_at < now() - make_interval(secs => \(staleAfterSeconds))
                """, logger: logger)
            let rows = try await connection.query(
                """
                UPDATE jobs j SET state = 'running', locked_at = now(), attempts = j.attempts + 1, updated_at = now()
                FROM (SELECT workspace_id, id FROM jobs WHERE state = 'queued' AND run_after <= now()
                      ORDER BY run_after LIMIT \(limit) FOR UPDATE SKIP LOCKED) due
                WHERE j.workspace_id = due.workspace_id AND j.id = due.id
                RETURNING j.workspace_id, j.id, j.kind, j.payload::text, j.state, j.attempts, j.max_attempts, j.run_after,
                          j.last_error, j.created_at
                """, logger: logger)
            return try await Self.decode(rows)
        }
    }

    public func complete(_ job: JobRecord) async throws {
        let logger = self.logger
        try await server.run { connection in
            try await connection.query(
                """
                UPDATE jobs SET state = 'done', locked_at = NULL, last_error = NULL, updated_at = now()
                WHERE workspace_id = \(job.workspaceID) AND id = \(job.id)
                """, logger: logger)
        }
    }

    /// Schedules a retry after 2^attempts seconds (capped at an hour), or marks the job dead.
    public func fail(_ job: JobRecord, error: String) async throws {
        let logger = self.logger
        let dead = job.attempts >= job.maxAttempts
        let delay = min(3600, 1 << min(job.attempts, 12))
        try await server.run { connection in
            try await connection.query(
                """
                UPDATE jobs SET state = \(dead ? "dead" : "queued"), locked_at = NULL, last_error = \(String(error.prefix(2000))),
                       run_after = now() + make_interval(secs => \(delay)), updated_at = now()
                WHERE workspace_id = \(job.workspaceID) AND id = \(job.id)
                """, logger: logger)
        }
    }

    /// Jobs of a workspace, newest first, optionally in one state.
    public func jobs(workspaceID: String, state: String?, limit: Int) async throws -> [JobRecord] {
        let logger = self.logger
        let filter = state ?? ""
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                SELECT workspace_id, id, kind, payload::text, state, attempts, max_attempts, run_after, last_error, created_at
                FROM jobs WHERE workspace_id = \(workspaceID) AND (\(filter) = '' OR state = \(filter))
                ORDER BY id DESC LIMIT \(limit)
                """, logger: logger)
            return try await Self.decode(rows)
        }
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [JobRecord] {
        var result: [JobRecord] = []
        for try await (ws, id, kind, payload, state, attempts, max, runAfter, error, created) in rows.decode(
            (String, String, String, String, String, Int, Int, Date, String?, Date).self)
        {
            result.append(
                JobRecord(
                    workspaceID: ws, id: id, kind: kind, payload: payload, state: state, attempts: attempts,
                    maxAttempts: max, runAfter: runAfter, lastError: error, createdAt: created))
        }
        return result
    }
}

extension TenantStore {
    /// Folds one run into the case and daily roll-ups, exactly once: the run is marked rolled up in the
    /// same transaction, so a retried or duplicated job finds nothing left to do. Returns false then.
    @discardableResult
    public func rollUp(runID: String) async throws -> Bool {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.transaction { connection in
            var claimed = false
            for try await _ in try await connection.query(
                "UPDATE runs SET rolled_up_at = now() WHERE workspace_id = \(ws) AND id = \(runID) AND rolled_up_at IS NULL RETURNING id",
                logger: logger)
            {
                claimed = true
            }
            guard claimed else { return false }
            try await connection.query(
                """
                INSERT INTO case_stats (workspace_id, case_id, project_id, first_seen_at, last_seen_at, last_run_id, last_status,
                                        last_failed_at, runs, passed, failed, broken, skipped, flaky, total_duration_ms)
                SELECT r.workspace_id, r.case_id, u.project_id, u.created_at, u.created_at, u.id, r.status,
                       CASE WHEN r.status IN ('failed', 'broken') THEN u.created_at END, 1,
                       (r.status = 'passed')::int, (r.status = 'failed')::int, (r.status = 'broken')::int,
                       (r.status = 'skipped')::int, r.flaky::int, r.duration_ms
                FROM case_results r JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
                WHERE r.workspace_id = \(ws) AND r.run_id = \(runID)
                ON CONFLICT (workspace_id, case_id) DO UPDATE SET
                    first_seen_at = LEAST(case_stats.first_seen_at, EXCLUDED.first_seen_at),
                    last_run_id = CASE WHEN EXCLUDED.last_seen_at >= case_stats.last_seen_at
                                       THEN EXCLUDED.last_run_id ELSE case_stats.last_run_id END,
                    last_status = CASE WHEN EXCLUDED.last_seen_at >= case_stats.last_seen_at
                                       THEN EXCLUDED.last_status ELSE case_stats.last_status END,
                    last_seen_at = GREATEST(case_stats.last_seen_at, EXCLUDED.last_seen_at),
                    last_failed_at = GREATEST(case_stats.last_failed_at, EXCLUDED.last_failed_at),
                    runs = case_stats.runs + 1,
                    passed = case_stats.passed + EXCLUDED.passed,
                    failed = case_stats.failed + EXCLUDED.failed,
                    broken = case_stats.broken + EXCLUDED.broken,
                    skipped = case_stats.skipped + EXCLUDED.skipped,
                    flaky = case_stats.flaky + EXCLUDED.flaky,
                    total_duration_ms = case_stats.total_duration_ms + EXCLUDED.total_duration_ms
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO project_daily (workspace_id, project_id, branch, day, runs, passed, failed, broken, skipped, flaky, duration_ms)
                SELECT u.workspace_id, u.project_id, u.branch, (u.created_at AT TIME ZONE 'UTC')::date, 1, u.passed, u.failed,
                       u.broken, u.skipped, u.flaky,
                       COALESCE((SELECT sum(duration_ms) FROM case_results r WHERE r.workspace_id = u.workspace_id AND r.run_id = u.id), 0)
                FROM runs u WHERE u.workspace_id = \(ws) AND u.id = \(runID)
                ON CONFLICT (workspace_id, project_id, branch, day) DO UPDATE SET
                    runs = project_daily.runs + 1, passed = project_daily.passed + EXCLUDED.passed,
                    failed = project_daily.failed + EXCLUDED.failed, broken = project_daily.broken + EXCLUDED.broken,
                    skipped = project_daily.skipped + EXCLUDED.skipped, flaky = project_daily.flaky + EXCLUDED.flaky,
                    duration_ms = project_daily.duration_ms + EXCLUDED.duration_ms
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO failure_groups (workspace_id, project_id, fingerprint, error_type, sample_message,
                                            first_seen_run_id, first_seen_at, last_seen_run_id, last_seen_at, runs, occurrences)
                SELECT u.workspace_id, u.project_id, r.fingerprint, min(r.error_type), min(left(r.error_message, 500)),
                       u.id, u.created_at, u.id, u.created_at, 1, count(*)
                FROM case_results r JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
                WHERE r.workspace_id = \(ws) AND r.run_id = \(runID) AND r.fingerprint IS NOT NULL
                GROUP BY u.workspace_id, u.project_id, u.id, u.created_at, r.fingerprint
                ON CONFLICT (workspace_id, project_id, fingerprint) DO UPDATE SET
                    first_seen_run_id = CASE WHEN EXCLUDED.first_seen_at < failure_groups.first_seen_at
                                             THEN EXCLUDED.first_seen_run_id ELSE failure_groups.first_seen_run_id END,
                    first_seen_at = LEAST(failure_groups.first_seen_at, EXCLUDED.first_seen_at),
                    last_seen_run_id = CASE WHEN EXCLUDED.last_seen_at >= failure_groups.last_seen_at
                                            THEN EXCLUDED.last_seen_run_id ELSE failure_groups.last_seen_run_id END,
                    last_seen_at = GREATEST(failure_groups.last_seen_at, EXCLUDED.last_seen_at),
                    runs = failure_groups.runs + 1,
                    occurrences = failure_groups.occurrences + EXCLUDED.occurrences
                """, logger: logger)
            return true
        }
    }
}
