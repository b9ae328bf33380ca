import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// A workspace's runs, results and steps, in PostgreSQL.
public struct PostgresRunRepository: RunRepository {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    public init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    public func persist(_ new: NewRun) async throws -> PersistedRun {
        try await RunWriter(server: server, workspaceID: workspaceID, logger: logger).persist(new)
    }

    public func persistShard(_ new: NewShard) async throws -> StoredShard {
        try await RunWriter(server: server, workspaceID: workspaceID, logger: logger).persistShard(new)
    }

    public func shardedResults(runID: String) async throws -> [ShardedResult] {
        try await RunWriter(server: server, workspaceID: workspaceID, logger: logger).shardedResults(runID: runID)
    }

    public func closeShardedRun(_ closing: ClosingRun) async throws -> RunRecord? {
        try await RunWriter(server: server, workspaceID: workspaceID, logger: logger).closeShardedRun(closing)
    }

    public func staleOpenRun(runID: String) async throws -> RunRecord? {
        try await RunWriter(server: server, workspaceID: workspaceID, logger: logger).staleOpenRun(runID: runID)
    }

    // MARK: runs

    static let runColumns = """
        SELECT id, project_id, external_run_id, branch, commit_sha, build_url, status, started_at, finished_at, env::text AS env,
               passed, failed, skipped, broken, flaky, baseline_run_id, new_failures, fixed, still_failing,
               COALESCE(seq, 0) AS seq, created_at, gate::text AS gate, shard_total, shards_received
        FROM runs
        """

    static func decodeRun(_ row: PostgresRow) throws -> RunRecord {
        let c = row.makeRandomAccess()
        func value<T: PostgresDecodable>(_ name: String, _: T.Type = T.self) throws -> T { try c[name].decode(T.self) }
        let env: String = try value("env")
        let gate: String? = try value("gate")
        let shardTotal: Int? = try value("shard_total")
        let shardsReceived: Int = try value("shards_received")
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
            seq: try value("seq"), createdAt: try value("created_at"),
            gate: gate.flatMap { try? JSONDecoder().decode(GateVerdict.self, from: Data($0.utf8)) } ?? .none,
            shards: shardTotal.map { ShardProgress(total: $0, received: shardsReceived) })
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
        // An open sharded run has no sequence number yet (and would sort first): it is no one's baseline.
        try await runs(
            "project_id = $2 AND branch = $3 AND seq IS NOT NULL", try binds([projectID, branch]), suffix: "ORDER BY seq DESC LIMIT 1"
        ).first
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

    public func rollUpBacklog(projectID: String) async throws -> RollUpBacklog {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            // The partial index of runs not rolled up. Waited for: roll-ups queued for their first attempt, or
            // running; one that failed (now waiting for its retry) or died holds no push up. The age by the
            // database's clock, which every node shares.
            for try await (count, age) in try await connection.query(
                """
                SELECT count(*)::int, COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(r.created_at)), 0)::float8 FROM runs r
                WHERE r.workspace_id = \(ws) AND r.project_id = \(projectID) AND r.rolled_up_at IS NULL AND r.seq IS NOT NULL
                  AND EXISTS (SELECT 1 FROM jobs j WHERE j.workspace_id = r.workspace_id
                              AND (j.state = 'running' OR (j.state = 'queued' AND j.attempts = 0)) AND j.payload->>'runId' = r.id)
                """, logger: logger
            ).decode((Int, Double).self) {
                return RollUpBacklog(pending: count, oldestAgeSeconds: max(0, age))
            }
            return RollUpBacklog(pending: 0, oldestAgeSeconds: 0)
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

    static let resultColumns = """
        SELECT r.ordinal, r.case_id, c.case_key, c.name, c.suite, c.full_name, c.file, r.status, r.duration_ms,
               r.attempts, r.flaky, r.regression, r.error_type, r.error_message, r.error_trace, r.labels::text AS labels,
               r.parameters::text AS parameters, r.attachments
        FROM case_results r JOIN cases c ON c.workspace_id = r.workspace_id AND c.id = r.case_id
        """

    static func decodeResult(_ row: PostgresRow) throws -> CaseResultRecord {
        let c = row.makeRandomAccess()
        func value<T: PostgresDecodable>(_ name: String, _: T.Type = T.self) throws -> T { try c[name].decode(T.self) }
        let errorType: String? = try value("error_type")
        let errorMessage: String? = try value("error_message")
        let errorTrace: String? = try value("error_trace")
        let labels: String = try value("labels")
        let parameters: String = try value("parameters")
        let regression: String? = try value("regression")
        return CaseResultRecord(
            ordinal: try value("ordinal"), caseID: try value("case_id"), caseKey: try value("case_key"),
            name: try value("name"), suite: try value("suite"), fullName: try value("full_name"), file: try value("file"),
            status: CaseStatus(rawValue: try value("status")) ?? .broken, durationMs: try value("duration_ms"),
            attempts: try value("attempts"), flaky: try value("flaky"),
            regression: regression.flatMap(RegressionBucket.init(rawValue:)),
            error: (errorType == nil && errorMessage == nil && errorTrace == nil)
                ? nil : KenshoError(type: errorType, message: errorMessage, trace: errorTrace),
            labels: (try? JSONDecoder().decode([String: String].self, from: Data(labels.utf8))) ?? [:],
            parameters: (try? JSONDecoder().decode([String: String].self, from: Data(parameters.utf8))) ?? [:],
            attachments: try value("attachments"))
    }

    /// A page of a run's results in case order, after `afterOrdinal`, optionally of one status or bucket.
    public func caseResults(
        runID: String, filter: CaseResultFilter, onlyRegressed: Bool = false, afterOrdinal: Int, limit: Int
    ) async throws -> [CaseResultRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        let statusFilter = filter.status?.rawValue ?? ""
        let bucketFilter = filter.bucket?.rawValue ?? ""
        var query = PostgresQuery(
            unsafeSQL: Self.resultColumns + """
                 WHERE r.workspace_id = $1 AND r.run_id = $2 AND r.ordinal > $3
                   AND ($4 = '' OR r.status = $4) AND ($5 = '' OR r.regression = $5)
                   AND (NOT $7 OR r.regression IS NOT NULL)
                   AND ($8 = '' OR c.suite = $8)
                   AND ($9 = '' OR strpos(lower(c.name), $9) > 0 OR strpos(lower(coalesce(c.suite, '')), $9) > 0
                        OR strpos(lower(c.case_key), $9) > 0)
                ORDER BY r.ordinal LIMIT $6
                """)
        query.binds.append(ws)
        query.binds.append(runID)
        query.binds.append(afterOrdinal)
        query.binds.append(statusFilter)
        query.binds.append(bucketFilter)
        query.binds.append(limit)
        query.binds.append(onlyRegressed)
        query.binds.append(filter.suite ?? "")
        // strpos, not LIKE: the reader's text has no wildcards to escape.
        query.binds.append(filter.text?.lowercased() ?? "")
        let bound = query
        return try await server.run { connection in
            var result: [CaseResultRecord] = []
            for try await row in try await connection.query(bound, logger: logger) {
                result.append(try Self.decodeResult(row))
            }
            return result
        }
    }

    /// One case's result in a run, with its steps.
    public func caseResult(runID: String, caseID: String) async throws -> (CaseResultRecord, [FlatStep])? {
        let (logger, ws) = (self.logger, workspaceID)
        var query = PostgresQuery(unsafeSQL: Self.resultColumns + " WHERE r.workspace_id = $1 AND r.run_id = $2 AND r.case_id = $3")
        query.binds.append(ws)
        query.binds.append(runID)
        query.binds.append(caseID)
        let bound = query
        return try await server.run { connection in
            var found: CaseResultRecord?
            for try await row in try await connection.query(bound, logger: logger) { found = try Self.decodeResult(row) }
            guard let result = found else { return nil }
            var steps: [FlatStep] = []
            for try await text in try await connection.query(
                "SELECT steps FROM case_steps WHERE workspace_id = \(ws) AND run_id = \(runID) AND case_ordinal = \(result.ordinal)",
                logger: logger
            ).decode(String.self) {
                guard let decoded = StepsText.decode(text) else { throw DomainError.internalError }
                steps = decoded
            }
            return (result, steps)
        }
    }

    public func runAttachments(runID: String, ids: [String]) async throws -> [DeclaredAttachment] {
        guard !ids.isEmpty else { return [] }
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var result: [DeclaredAttachment] = []
            let rows = try await connection.query(
                """
                SELECT attachment_id, sha256, size, content_type FROM run_attachments
                WHERE workspace_id = \(ws) AND run_id = \(runID) AND attachment_id = ANY(\(ids)) ORDER BY attachment_id
                """, logger: logger)
            for try await (id, sha, size, type) in rows.decode((String, String, Int64, String).self) {
                result.append(DeclaredAttachment(id: id, sha256: sha, size: size, contentType: type))
            }
            return result
        }
    }

    /// The case's latest results on a branch, newest first.
    public func caseHistory(caseID: String, projectID: String, branch: String, limit: Int) async throws
        -> [CaseHistoryEntry]
    {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                SELECT u.id, u.external_run_id, u.branch, r.status, r.duration_ms, r.error_message, u.created_at
                FROM runs u JOIN case_results r ON r.workspace_id = u.workspace_id AND r.run_id = u.id
                WHERE u.workspace_id = \(ws) AND u.project_id = \(projectID) AND u.branch = \(branch) AND r.case_id = \(caseID)
                  AND u.seq IS NOT NULL
                ORDER BY u.seq DESC LIMIT \(limit)
                """, logger: logger)
            return try await PostgresInventoryRepository.historyEntries(rows)
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
}
