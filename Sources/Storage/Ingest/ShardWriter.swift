import Domains
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Sharded runs: each shard's cases go straight into the run's results (numbered after the earlier shards'),
/// so that closing the run reads statuses back and writes only what assembly and regression change —
/// the shards' own writes are those of one document, spread over its parts.
extension RunWriter {

    static let ordinalStride = RunShard.ordinalStride

    /// Stores one shard. Shards of one run write their cases in parallel; only the run's counters are
    /// updated under its row lock, at the end of each shard's transaction, which also numbers the shards in
    /// the order they arrived (a case two shards report takes the later one's result). A deadlock between
    /// two shards inserting the same new cases in different orders is retried.
    func persistShard(_ new: NewShard) async throws -> StoredShard {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await persistShardOnce(new)
            } catch let error as PSQLError where ["40P01", "40001"].contains(error.serverInfo?[.sqlState] ?? "") && attempt < 4 {
                continue
            }
        }
    }

    func persistShardOnce(_ new: NewShard) async throws -> StoredShard {
        let (logger, ws) = (self.logger, workspaceID)
        let run = new.run
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let env = String(decoding: try encoder.encode(run.env), as: UTF8.self)
        let totals = run.totals
        let attIDs = new.attachments.map(\.id), attShas = new.attachments.map(\.sha256),
            attSizes = new.attachments.map(\.size), attTypes = new.attachments.map(\.contentType)

        return try await server.transaction { connection in
            try await connection.query(
                """
                INSERT INTO runs (workspace_id, id, project_id, external_run_id, branch, commit_sha, build_url, status,
                                  started_at, finished_at, env, passed, failed, skipped, broken, flaky, new_failures, fixed,
                                  still_failing, seq, shard_total)
                VALUES (\(ws), \(new.runID), \(new.projectID), \(run.externalRunId), \(run.branch), \(run.commit), \(run.buildURL),
                        'open', \(run.startedAt), \(run.finishedAt), \(env)::jsonb, 0, 0, 0, 0, 0, 0, 0, 0, NULL, \(new.shard.total))
                ON CONFLICT (workspace_id, project_id, external_run_id) DO NOTHING
                """, logger: logger)
            var head: (id: String, status: String, total: Int?, branch: String)?
            for try await row in try await connection.query(
                """
                SELECT id, status, shard_total, branch FROM runs
                WHERE workspace_id = \(ws) AND project_id = \(new.projectID) AND external_run_id = \(run.externalRunId)
                """, logger: logger
            ).decode((String, String, Int?, String).self) {
                head = (row.0, row.1, row.2, row.3)
            }
            guard let head else { throw StorageError.configuration("the sharded run's row vanished") }
            guard let total = head.total else {
                throw DomainError.conflict(
                    "externalRunId '\(run.externalRunId)' is a run pushed whole, not in shards",
                    details: ["pointer": .string("/shard")])
            }
            if let stored = try await Self.storedShardDigest(runID: head.id, index: new.shard.index, workspaceID: ws, on: connection, logger: logger) {
                guard stored == new.digest else {
                    throw DomainError.conflict(
                        "shard \(new.shard.index) of run '\(run.externalRunId)' is already stored with other results",
                        details: ["pointer": .string("/shard/index"), "runId": .string(head.id)])
                }
                return .replayed(try await Self.runRecord(id: head.id, workspaceID: ws, on: connection, logger: logger))
            }
            guard head.status == RunRecord.open else {
                throw DomainError.conflict(
                    "run '\(run.externalRunId)' was closed (\(head.status)) before shard \(new.shard.index) arrived",
                    details: ["pointer": .string("/shard/index"), "runId": .string(head.id)])
            }
            guard total == new.shard.total else {
                throw DomainError.validation(
                    pointer: "/shard/total", "is \(new.shard.total) but the run's earlier shards say \(total)")
            }
            guard head.branch == run.branch else {
                throw DomainError.validation(pointer: "/branch", "is '\(run.branch)' but the run's earlier shards say '\(head.branch)'")
            }
            let caseIDs = try await Self.inventory(
                of: run, digests: new.keyDigests, known: new.knownCaseIDs, projectID: new.projectID, workspaceID: ws,
                on: connection, logger: logger)
            try await Self.copyResults(
                run.cases, buckets: new.buckets, caseIDs: caseIDs, digests: new.keyDigests,
                runID: head.id, ordinalBase: new.shard.index * Self.ordinalStride, workspaceID: ws, on: connection, logger: logger)
            if !attIDs.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO run_attachments (workspace_id, run_id, attachment_id, sha256, size, content_type)
                    SELECT \(ws), \(head.id), * FROM UNNEST(\(attIDs)::text[], \(attShas)::text[], \(attSizes)::bigint[], \(attTypes)::text[])
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
            // Last, and briefly under the run's row lock: the counters, and this shard's place in arrival order.
            // A run closed meanwhile (as partial) takes no more shards.
            var arrival: Int?
            for try await received in try await connection.query(
                """
                UPDATE runs SET shards_received = shards_received + 1,
                       passed = passed + \(totals.passed), failed = failed + \(totals.failed), skipped = skipped + \(totals.skipped),
                       broken = broken + \(totals.broken), flaky = flaky + \(totals.flaky),
                       started_at = LEAST(started_at, \(run.startedAt)), finished_at = GREATEST(finished_at, \(run.finishedAt)),
                       shard_deadline = now() + make_interval(secs => \(Double(new.timeoutSeconds)))
                WHERE workspace_id = \(ws) AND id = \(head.id) AND status = 'open'
                RETURNING shards_received
                """, logger: logger
            ).decode(Int.self) {
                arrival = received
            }
            guard let arrival else {
                throw DomainError.conflict(
                    "run '\(run.externalRunId)' was closed before shard \(new.shard.index) arrived",
                    details: ["pointer": .string("/shard/index"), "runId": .string(head.id)])
            }
            try await connection.query(
                """
                WITH s AS (
                    INSERT INTO run_shards (workspace_id, run_id, shard_index, digest, cases, arrival)
                    VALUES (\(ws), \(head.id), \(new.shard.index), \(new.digest), \(run.cases.count), \(arrival)))
                INSERT INTO jobs (workspace_id, id, kind, payload, run_after)
                VALUES (\(ws), \(ResourceID.make(.job)), \(JobQueue.shardCloseKind),
                        jsonb_build_object('runId', \(head.id)::text), now() + make_interval(secs => \(Double(new.timeoutSeconds))))
                """, logger: logger)
            let record = try await Self.runRecord(id: head.id, workspaceID: ws, on: connection, logger: logger)
            // Only this shard's ids: the caller adds them to what its cache holds (other shards add theirs).
            let own = caseIDs.restricted(to: new.keyDigests)
            return .stored(record, caseIDs: own)
        }
    }

    static func storedShardDigest(runID: String, index: Int, workspaceID ws: String, on connection: PostgresConnection, logger: Logger)
        async throws -> String?
    {
        for try await digest in try await connection.query(
            "SELECT digest FROM run_shards WHERE workspace_id = \(ws) AND run_id = \(runID) AND shard_index = \(index)",
            logger: logger
        ).decode(String.self) {
            return digest
        }
        return nil
    }

    /// Every result of a sharded run, for its close: one row of arrays (a 64,000-case run decodes in a
    /// fraction of the time its rows would take).
    func shardedResults(runID: String) async throws -> [ShardedResult] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var out: [ShardedResult] = []
            for try await row in try await connection.query(
                """
                SELECT COALESCE(array_agg(t.ordinal), '{}'), COALESCE(array_agg(t.case_id), '{}'), COALESCE(array_agg(t.case_key), '{}'),
                       COALESCE(array_agg(t.name), '{}'), COALESCE(array_agg(t.suite), '{}'), COALESCE(array_agg(t.status), '{}'),
                       COALESCE(array_agg(t.duration_ms), '{}'), COALESCE(array_agg(t.attempts), '{}'), COALESCE(array_agg(t.flaky), '{}'),
                       COALESCE(array_agg(t.arrival), '{}'), COALESCE(array_agg(t.regression), '{}')
                FROM (SELECT r.ordinal::int8 AS ordinal, r.case_id, c.case_key, c.name, COALESCE(c.suite, '') AS suite, r.status,
                             r.duration_ms::int8 AS duration_ms, r.attempts::int8 AS attempts, r.flaky, COALESCE(s.arrival, 0)::int8 AS arrival,
                             COALESCE(r.regression, '') AS regression
                      FROM case_results r JOIN cases c ON c.workspace_id = r.workspace_id AND c.id = r.case_id
                      LEFT JOIN run_shards s ON s.workspace_id = r.workspace_id AND s.run_id = r.run_id
                                            AND s.shard_index = r.ordinal / \(Self.ordinalStride)
                      WHERE r.workspace_id = \(ws) AND r.run_id = \(runID)
                      ORDER BY r.ordinal) t
                """, logger: logger
            ).decode(([Int], [String], [String], [String], [String], [String], [Int64], [Int], [Bool], [Int], [String]).self) {
                let count = row.0.count
                guard [row.1.count, row.2.count, row.3.count, row.4.count, row.5.count, row.6.count, row.7.count, row.8.count, row.9.count,
                       row.10.count]
                    .allSatisfy({ $0 == count })
                else { throw StorageError.configuration("the run's result arrays disagree in length") }
                out.reserveCapacity(count)
                for i in 0..<count {
                    out.append(
                        ShardedResult(
                            ordinal: row.0[i], caseID: row.1[i], key: row.2[i], name: row.3[i], suite: row.4[i].isEmpty ? nil : row.4[i],
                            status: CaseStatus(rawValue: row.5[i]) ?? .broken, durationMs: row.6[i], attempts: row.7[i], flaky: row.8[i],
                            arrival: row.9[i], storedBucket: RegressionBucket(rawValue: row.10[i])))
                }
            }
            return out
        }
    }

    /// Closes an open sharded run: drops results later shards replaced, writes the assembled cases' attempts,
    /// flakiness and regression, and the run's totals, place in the project's order, baseline and gate; queues
    /// its roll-up. Nil when the run was no longer open (closed meanwhile, by another node). Throws a unique
    /// violation when the sequence number is taken, like a finalize.
    func closeShardedRun(_ closing: ClosingRun) async throws -> RunRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        let assembly = closing.assembly
        let gate: String? = closing.gate.status == .none && closing.gate.forgiven.isEmpty
            ? nil : String(decoding: try JSONEncoder().encode(closing.gate), as: UTF8.self)
        // Only the buckets the close's baseline changes (a run of the branch closed while the shards came in).
        let changed = zip(assembly.results, closing.buckets).filter { $0.0.storedBucket != $0.1 }
            .map { result, bucket in (result.ordinal, bucket?.rawValue ?? "") }
        let bucketOrdinals = changed.map(\.0), bucketValues = changed.map(\.1)
        let amendedOrdinals = assembly.amended.map(\.ordinal), amendedAttempts = assembly.amended.map(\.attempts),
            amendedFlaky = assembly.amended.map(\.flaky)
        let totals = assembly.totals, summary = closing.regression
        return try await server.transaction { connection in
            var open = false
            for try await status in try await connection.query(
                "SELECT status FROM runs WHERE workspace_id = \(ws) AND id = \(closing.runID) FOR UPDATE", logger: logger
            ).decode(String.self) {
                open = status == RunRecord.open
            }
            guard open else { return nil }
            if !assembly.superseded.isEmpty {
                try await connection.query(
                    "DELETE FROM case_steps WHERE workspace_id = \(ws) AND run_id = \(closing.runID) AND case_ordinal = ANY(\(assembly.superseded)::int[])",
                    logger: logger)
                try await connection.query(
                    "DELETE FROM case_results WHERE workspace_id = \(ws) AND run_id = \(closing.runID) AND ordinal = ANY(\(assembly.superseded)::int[])",
                    logger: logger)
            }
            if !amendedOrdinals.isEmpty {
                try await connection.query(
                    """
                    UPDATE case_results r SET attempts = u.attempts, flaky = u.flaky
                    FROM UNNEST(\(amendedOrdinals)::int[], \(amendedAttempts)::int[], \(amendedFlaky)::bool[]) AS u(ordinal, attempts, flaky)
                    WHERE r.workspace_id = \(ws) AND r.run_id = \(closing.runID) AND r.ordinal = u.ordinal
                    """, logger: logger)
            }
            if !bucketOrdinals.isEmpty {
                try await connection.query(
                    """
                    UPDATE case_results r SET regression = NULLIF(u.bucket, '')
                    FROM UNNEST(\(bucketOrdinals)::int[], \(bucketValues)::text[]) AS u(ordinal, bucket)
                    WHERE r.workspace_id = \(ws) AND r.run_id = \(closing.runID) AND r.ordinal = u.ordinal
                    """, logger: logger)
            }
            try await connection.query(
                """
                UPDATE runs SET status = \(closing.partial ? RunRecord.partial : RunRecord.closed), seq = \(closing.seq),
                       baseline_run_id = \(closing.baselineRunID), passed = \(totals.passed), failed = \(totals.failed),
                       skipped = \(totals.skipped), broken = \(totals.broken), flaky = \(totals.flaky),
                       new_failures = \(summary.newFailures), fixed = \(summary.fixed), still_failing = \(summary.stillFailing),
                       gate = \(gate)::jsonb, shard_deadline = NULL
                WHERE workspace_id = \(ws) AND id = \(closing.runID)
                """, logger: logger)
            try await Self.recordGateFailure(
                closing.gate, runID: closing.runID, branch: closing.branch, projectID: closing.projectID, workspaceID: ws,
                on: connection, logger: logger)
            let record = try await Self.runRecord(id: closing.runID, workspaceID: ws, on: connection, logger: logger)
            let newFailures = zip(assembly.results, closing.buckets).lazy.filter { $0.1 == .newFailure }.prefix(10).map(\.0.name)
            try await Self.enqueueRollUpAndAnnounce(
                runID: closing.runID, projectID: closing.projectID,
                event: Self.finalizedEvent(
                    runID: closing.runID, externalRunId: record.externalRunId, branch: record.branch, commit: record.commit,
                    status: record.status, totals: totals, regression: summary, baselineRunID: closing.baselineRunID,
                    gate: closing.gate, newFailureNames: Array(newFailures)),
                workspaceID: ws, on: connection, logger: logger)
            return record
        }
    }

    /// The run if it is open and has waited past its deadline for a shard.
    func staleOpenRun(runID: String) async throws -> RunRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var stale = false
            for try await due in try await connection.query(
                """
                SELECT shard_deadline <= now() FROM runs
                WHERE workspace_id = \(ws) AND id = \(runID) AND status = 'open' AND shard_deadline IS NOT NULL
                """, logger: logger
            ).decode(Bool.self) {
                stale = due
            }
            guard stale else { return nil }
            return try await Self.runRecord(id: runID, workspaceID: ws, on: connection, logger: logger)
        }
    }

    static func runRecord(id: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger) async throws
        -> RunRecord
    {
        var query = PostgresQuery(unsafeSQL: PostgresRunRepository.runColumns + " WHERE workspace_id = $1 AND id = $2")
        query.binds.append(ws)
        query.binds.append(id)
        for try await row in try await connection.query(query, logger: logger) {
            return try PostgresRunRepository.decodeRun(row)
        }
        throw StorageError.configuration("run \(id) vanished inside its own transaction")
    }
}
