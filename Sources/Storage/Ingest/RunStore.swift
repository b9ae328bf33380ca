import Domains
import Foundation
import Logging
import PostgresNIO

/// Runs, cases, results, steps, blobs and upload sessions of one workspace on its shard.
extension TenantStore {
    // MARK: blobs and upload sessions

    /// The subset of `shas` this workspace already stores.
    public func existingBlobs(_ shas: [String]) async throws -> Set<String> {
        guard !shas.isEmpty else { return [] }
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var found = Set<String>()
            for try await sha in try await connection.query(
                "SELECT sha256 FROM blobs WHERE workspace_id = \(ws) AND sha256 = ANY(\(shas))", logger: logger
            ).decode(String.self) {
                found.insert(sha)
            }
            return found
        }
    }

    public func recordBlob(sha256: String, size: Int64, contentType: String) async throws {
        let (logger, ws) = (self.logger, workspaceID)
        try await server.run { connection in
            try await connection.query(
                """
                INSERT INTO blobs (workspace_id, sha256, size, content_type) VALUES (\(ws), \(sha256), \(size), \(contentType))
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
    }

    public func createUploadSession(_ session: UploadSession) async throws {
        let (logger, ws) = (self.logger, workspaceID)
        let attachments = String(decoding: try JSONEncoder().encode(session.attachments), as: UTF8.self)
        try await server.run { connection in
            try await connection.query(
                """
                INSERT INTO upload_sessions (workspace_id, id, project_id, external_run_id, attachments, expires_at)
                VALUES (\(ws), \(session.id), \(session.projectID), \(session.externalRunId), \(attachments)::jsonb, \(session.expiresAt))
                """, logger: logger)
        }
    }

    public func uploadSession(id: String) async throws -> UploadSession? {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                SELECT project_id, external_run_id, attachments::text, expires_at FROM upload_sessions
                WHERE workspace_id = \(ws) AND id = \(id)
                """, logger: logger)
            for try await (project, external, attachments, expires) in rows.decode((String, String, String, Date).self) {
                let declared = try JSONDecoder().decode([DeclaredAttachment].self, from: Data(attachments.utf8))
                return UploadSession(
                    id: id, workspaceID: ws, projectID: project, externalRunId: external, attachments: declared,
                    expiresAt: expires)
            }
            return nil
        }
    }

    // MARK: runs

    static let runColumns = """
        SELECT id, project_id, external_run_id, branch, commit_sha, build_url, status, started_at, finished_at, env::text AS env,
               passed, failed, skipped, broken, flaky, baseline_run_id, new_failures, fixed, still_failing, seq, created_at
        FROM runs
        """

    static func decodeRun(_ row: PostgresRow) throws -> RunRecord {
        let c = row.makeRandomAccess()
        func value<T: PostgresDecodable>(_ name: String, _: T.Type = T.self) throws -> T { try c[name].decode(T.self) }
        let env: String = try value("env")
        return RunRecord(
            id: try value("id"), projectID: try value("project_id"), externalRunId: try value("external_run_id"),
            branch: try value("branch"), commit: try value("commit_sha"), buildURL: try value("build_url"),
            status: try value("status"), startedAt: try value("started_at"), finishedAt: try value("finished_at"),
            env: (try? JSONDecoder().decode([String: String].self, from: Data(env.utf8))) ?? [:],
            totals: RunTotals(
                passed: try value("passed"), failed: try value("failed"), skipped: try value("skipped"),
                broken: try value("broken"), flaky: try value("flaky")),
            baselineRunID: try value("baseline_run_id"),
            regression: RegressionSummary(
                newFailures: try value("new_failures"), fixed: try value("fixed"), stillFailing: try value("still_failing")),
            seq: try value("seq"), createdAt: try value("created_at"))
    }

    func runs(_ whereClause: String, _ binds: PostgresBindings, suffix: String = "") async throws -> [RunRecord] {
        var query = PostgresQuery(unsafeSQL: Self.runColumns + " WHERE workspace_id = $1 AND " + whereClause + " " + suffix)
        query.binds = binds
        let bound = query
        let logger = self.logger
        return try await server.run { connection in
            var result: [RunRecord] = []
            for try await row in try await connection.query(bound, logger: logger) {
                result.append(try Self.decodeRun(row))
            }
            return result
        }
    }

    private func binds(_ values: [any PostgresEncodable & Sendable]) throws -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(workspaceID)
        for value in values { try binds.append(value, context: .default) }
        return binds
    }

    public func run(id: String) async throws -> RunRecord? {
        try await runs("id = $2", try binds([id])).first
    }

    public func run(projectID: String, externalRunId: String) async throws -> RunRecord? {
        try await runs("project_id = $2 AND external_run_id = $3", try binds([projectID, externalRunId])).first
    }

    /// The newest run of the branch.
    public func latestRun(projectID: String, branch: String) async throws -> RunRecord? {
        try await runs("project_id = $2 AND branch = $3", try binds([projectID, branch]), suffix: "ORDER BY seq DESC LIMIT 1").first
    }

    /// Runs of a project, newest first, optionally of one branch, after the cursor's `seq`.
    public func runs(projectID: String, branch: String?, beforeSeq: Int64?, limit: Int) async throws -> [RunRecord] {
        let before = beforeSeq ?? Int64.max
        if let branch {
            return try await runs(
                "project_id = $2 AND branch = $3 AND seq < $4", try binds([projectID, branch, before]),
                suffix: "ORDER BY seq DESC LIMIT \(limit)")
        }
        return try await runs(
            "project_id = $2 AND seq < $3", try binds([projectID, before]), suffix: "ORDER BY seq DESC LIMIT \(limit)")
    }

    public func maxRunSequence(projectID: String) async throws -> Int64 {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            for try await seq in try await connection.query(
                "SELECT COALESCE(max(seq), 0)::bigint FROM runs WHERE workspace_id = \(ws) AND project_id = \(projectID)",
                logger: logger
            ).decode(Int64.self) {
                return seq
            }
            return 0
        }
    }

    /// Case key → final status of every case of a run (the baseline of a regression).
    public func caseStatuses(runID: String) async throws -> [String: CaseStatus] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var result: [String: CaseStatus] = [:]
            let rows = try await connection.query(
                """
                SELECT c.case_key, r.status FROM case_results r
                JOIN cases c ON c.workspace_id = r.workspace_id AND c.id = r.case_id
                WHERE r.workspace_id = \(ws) AND r.run_id = \(runID)
                """, logger: logger)
            for try await (key, status) in rows.decode((String, String).self) {
                result[key] = CaseStatus(rawValue: status)
            }
            return result
        }
    }
}
