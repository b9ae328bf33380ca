import Domains
import Foundation
import Logging
import PostgresNIO

/// The queue on one physical server. Jobs are enqueued in the transaction that creates their subject
/// (a run), claimed with `FOR UPDATE SKIP LOCKED` so workers on several nodes never take the same
/// job, held on leases their worker renews (a crashed worker's jobs are taken back when the lease
/// lapses), retried with exponential backoff, and left `dead` with their last error after `max_attempts`.
public struct JobQueue: Sendable {
    public let server: PhysicalServer
    let logger: Logger

    public init(server: PhysicalServer, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    public static let rollupKind = "run.rollup"
    /// Closes a sharded run as partial once it waited past its deadline for a shard: each shard queues one,
    /// due at its deadline; it does nothing if a later shard moved the deadline (and queued a later check).
    public static let shardCloseKind = "run.shards.close"

    public struct ShardClosePayload: Codable, Sendable {
        public let runId: String
    }

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

    /// Claims up to `limit` due jobs for `worker`, each on a lease of `lease` that the worker renews
    /// (`renew`) while it runs them. Jobs whose lease lapsed — their worker died or hangs — are
    /// taken back first, so a crashed node's jobs are running elsewhere seconds after its leases end.
    ///
    /// Of one lane (a project's roll-ups) at most `perProject` are taken, its oldest, and none of the
    /// lanes in `excludingLanes` (the worker holds enough of them already): a project with a long
    /// backlog leaves room for the others' jobs.
    public func claim(
        limit: Int, perProject: Int = .max, excludingLanes: [String] = [], worker: String, lease: Duration
    ) async throws -> [JobRecord] {
        let logger = self.logger
        let leaseSeconds = Self.seconds(lease)
        let perProject = min(perProject, limit)
        return try await server.transaction { connection in
            try await connection.query(
                """
                UPDATE jobs SET state = 'queued', locked_at = NULL, lease_expires_at = NULL, leased_by = NULL,
                       attempts = CASE WHEN started_at IS NULL THEN GREATEST(attempts - 1, 0) ELSE attempts END,
                       last_error = 'taken back: the lease of ' || COALESCE(leased_by, 'a worker') || ' lapsed', updated_at = now()
                WHERE state = 'running' AND COALESCE(lease_expires_at, locked_at + interval '5 minutes') < now()
                """, logger: logger)
            // Row locks cannot be taken under a window function: candidates are chosen first, then
            // locked (skipping those another worker took meanwhile).
            let rows = try await connection.query(
                """
                UPDATE jobs j SET state = 'running', locked_at = now(), attempts = j.attempts + 1, updated_at = now(),
                       lease_expires_at = now() + make_interval(secs => \(leaseSeconds)), leased_by = \(worker), started_at = NULL
                FROM (SELECT workspace_id, id FROM jobs
                      WHERE (workspace_id, id) IN (
                          SELECT workspace_id, id FROM (
                              SELECT workspace_id, id, run_after,
                                     row_number() OVER (PARTITION BY workspace_id, COALESCE(payload->>'projectId', id) ORDER BY id) AS n
                              FROM jobs WHERE state = 'queued' AND run_after <= now()
                                AND workspace_id || '/' || COALESCE(payload->>'projectId', id) <> ALL(\(excludingLanes)::text[])) c
                          WHERE n <= \(perProject) ORDER BY run_after, id LIMIT \(limit))
                        AND state = 'queued' AND run_after <= now()
                      FOR UPDATE SKIP LOCKED) due
                WHERE j.workspace_id = due.workspace_id AND j.id = due.id
                RETURNING j.workspace_id, j.id, j.kind, j.payload::text, j.state, j.attempts, j.max_attempts, j.run_after,
                          j.last_error, j.created_at
                """, logger: logger)
            return try await Self.decode(rows)
        }
    }

    /// The payload of a roll-up job: the run, and its project (which orders roll-ups; older jobs lack it).
    public struct RollUpPayload: Codable, Sendable {
        public let runId: String
        public let projectId: String?
    }

    static func rollUpPayload(runID: String, projectID: String) -> String {
        String(decoding: (try? JSONEncoder().encode(RollUpPayload(runId: runID, projectId: projectID))) ?? Data(), as: UTF8.self)
    }

    /// The lane a job runs in after the workspace: its project, when the payload names one.
    public static func laneKey(payload: String) -> String? {
        (try? JSONDecoder().decode(RollUpPayload.self, from: Data(payload.utf8)))?.projectId
    }

    /// Marks a claimed job begun: from now on a crash of its worker counts as one of its attempts.
    public func begin(_ job: JobRecord) async throws { try await begin([job]) }

    /// Marks claimed jobs begun, in one statement.
    public func begin(_ jobs: [JobRecord]) async throws {
        guard !jobs.isEmpty else { return }
        let logger = self.logger
        let (workspaces, ids) = (jobs.map(\.workspaceID), jobs.map(\.id))
        try await server.run { connection in
            try await connection.query(
                """
                UPDATE jobs j SET started_at = now() FROM UNNEST(\(workspaces)::text[], \(ids)::text[]) AS k(workspace_id, id)
                WHERE j.workspace_id = k.workspace_id AND j.id = k.id
                """, logger: logger)
        }
    }

    /// Extends the leases `worker` holds on `jobs`. Returns how many it still held.
    @discardableResult
    public func renew(_ jobs: [JobRecord], worker: String, lease: Duration) async throws -> Int {
        guard !jobs.isEmpty else { return 0 }
        let logger = self.logger
        let (workspaces, ids) = (jobs.map(\.workspaceID), jobs.map(\.id))
        let leaseSeconds = Self.seconds(lease)
        return try await server.run { connection in
            var renewed = 0
            for try await _ in try await connection.query(
                """
                UPDATE jobs j SET lease_expires_at = now() + make_interval(secs => \(leaseSeconds))
                FROM UNNEST(\(workspaces)::text[], \(ids)::text[]) AS k(workspace_id, id)
                WHERE j.workspace_id = k.workspace_id AND j.id = k.id AND j.state = 'running' AND j.leased_by = \(worker)
                RETURNING j.id
                """, logger: logger)
            {
                renewed += 1
            }
            return renewed
        }
    }

    /// Puts a job back without spending an attempt: it could not run yet (an earlier run of its
    /// project is still to be rolled up), which is no failure of its own.
    public func postpone(_ job: JobRecord, by delay: Duration, reason: String) async throws {
        let logger = self.logger
        let seconds = Self.seconds(delay)
        try await server.run { connection in
            try await connection.query(
                """
                UPDATE jobs SET state = 'queued', attempts = GREATEST(attempts - 1, 0), locked_at = NULL,
                       lease_expires_at = NULL, leased_by = NULL, last_error = \(String(reason.prefix(2000))),
                       run_after = now() + make_interval(secs => \(seconds)), updated_at = now()
                WHERE workspace_id = \(job.workspaceID) AND id = \(job.id)
                """, logger: logger)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    public func complete(_ job: JobRecord) async throws { try await complete([job]) }

    /// Marks jobs done, in one statement (a batch of roll-ups committed together).
    public func complete(_ jobs: [JobRecord]) async throws {
        guard !jobs.isEmpty else { return }
        let logger = self.logger
        let (workspaces, ids) = (jobs.map(\.workspaceID), jobs.map(\.id))
        try await server.run { connection in
            try await connection.query(
                """
                UPDATE jobs j SET state = 'done', locked_at = NULL, lease_expires_at = NULL, last_error = NULL, updated_at = now()
                FROM UNNEST(\(workspaces)::text[], \(ids)::text[]) AS k(workspace_id, id)
                WHERE j.workspace_id = k.workspace_id AND j.id = k.id
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
                UPDATE jobs SET state = \(dead ? "dead" : "queued"), locked_at = NULL, lease_expires_at = NULL, last_error = \(String(error.prefix(2000))),
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
