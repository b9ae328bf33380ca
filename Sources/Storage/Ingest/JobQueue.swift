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
