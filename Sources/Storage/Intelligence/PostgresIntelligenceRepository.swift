import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// Failure clusters, flakiness and roll-ups of a workspace, in PostgreSQL.
public struct PostgresIntelligenceRepository: IntelligenceRepository {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    public init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    public func runFailureGroups(runID: String) async throws -> [RunFailureGroupRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var out: [RunFailureGroupRecord] = []
            let rows = try await connection.query(
                // Group the run's failing results first, then look up names for the 20 cases each group
                // shows (joining every failing result to `cases` cost 143 ms against 21 ms on a run with 7,500
                // failures), and each group's first sighting once per group.
                """
                WITH grouped AS MATERIALIZED (
                    SELECT r.fingerprint, min(r.error_type) AS error_type, min(left(r.error_message, 500)) AS message,
                           count(*)::int AS n, (array_agg(r.case_id ORDER BY r.ordinal))[1:20] AS ids
                    FROM case_results r
                    WHERE r.workspace_id = \(ws) AND r.run_id = \(runID) AND r.fingerprint IS NOT NULL
                    GROUP BY r.fingerprint
                )
                SELECT g.fingerprint, g.error_type, g.message, g.n, g.ids,
                       ARRAY(SELECT c.name FROM unnest(g.ids) WITH ORDINALITY AS u(id, k)
                             JOIN cases c ON c.workspace_id = \(ws) AND c.id = u.id ORDER BY u.k),
                       f.first_seen_run_id
                FROM grouped g
                LEFT JOIN failure_groups f ON f.workspace_id = \(ws) AND f.fingerprint = g.fingerprint
                     AND f.project_id = (SELECT project_id FROM runs WHERE workspace_id = \(ws) AND id = \(runID))
                ORDER BY g.n DESC, g.fingerprint
                """, logger: logger)
            for try await (fingerprint, type, message, count, ids, names, first) in rows.decode(
                (String, String?, String?, Int32, [String], [String], String?).self)
            {
                out.append(
                    RunFailureGroupRecord(
                        fingerprint: fingerprint, errorType: type, sampleMessage: message, count: Int(count),
                        cases: zip(ids, names).map { RunFailureGroupRecord.CaseRef(id: $0.0, name: $0.1) },
                        firstSeenRunID: first))
            }
            return out
        }
    }

    /// Clusters of a project, most recently seen first; pages by (lastSeenAt, fingerprint).
    public func projectFailureGroups(projectID: String, before: (micros: Int64, fingerprint: String)?, limit: Int)
        async throws -> [FailureGroupRecord]
    {
        let (logger, ws) = (self.logger, workspaceID)
        let (beforeAt, beforePrint) = (before?.micros ?? Int64.max, before?.fingerprint ?? "")
        let paged = before != nil
        return try await server.run { connection in
            var out: [FailureGroupRecord] = []
            let rows = try await connection.query(
                """
                SELECT g.fingerprint, g.error_type, g.sample_message, g.first_seen_run_id, g.first_seen_at, g.last_seen_run_id,
                       g.last_seen_at, g.runs, g.occurrences, (extract(epoch FROM g.last_seen_at) * 1000000)::bigint,
                       g.affected_cases, COALESCE(recent.ids, '{}'), COALESCE(recent.names, '{}')
                FROM failure_groups g
                LEFT JOIN LATERAL (
                    -- The roll-up keeps the five on the cluster, most recent first (migration 20).
                    SELECT array_agg(c.id ORDER BY r.position) AS ids, array_agg(c.name ORDER BY r.position) AS names
                    FROM unnest(g.recent_cases) WITH ORDINALITY AS r(case_id, position)
                    JOIN cases c ON c.workspace_id = g.workspace_id AND c.id = r.case_id) recent ON true
                WHERE g.workspace_id = \(ws) AND g.project_id = \(projectID)
                  AND (NOT \(paged)
                       OR ((extract(epoch FROM g.last_seen_at) * 1000000)::bigint, g.fingerprint) < (\(beforeAt), \(beforePrint)))
                ORDER BY g.last_seen_at DESC, g.fingerprint DESC LIMIT \(limit)
                """, logger: logger)
            for try await (fingerprint, type, message, firstRun, firstAt, lastRun, lastAt, runs, occurrences, micros, affected, ids, names)
                in rows.decode((String, String?, String?, String, Date, String, Date, Int32, Int32, Int64, Int32, [String], [String]).self)
            {
                out.append(
                    FailureGroupRecord(
                        fingerprint: fingerprint, errorType: type, sampleMessage: message, firstSeenRunID: firstRun,
                        firstSeenAt: firstAt, lastSeenRunID: lastRun, lastSeenAt: lastAt, runs: Int(runs),
                        occurrences: Int(occurrences), lastSeenMicros: micros, affectedCases: Int(affected),
                        recentCases: zip(ids, names).map { RunFailureGroupRecord.CaseRef(id: $0.0, name: $0.1) }))
            }
            return out
        }
    }

    static func flakyPolicy(projectID: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger) async throws
        -> FlakyPolicy
    {
        for try await text in try await connection.query(
            "SELECT flaky_policy::text FROM project_settings WHERE workspace_id = \(ws) AND project_id = \(projectID)",
            logger: logger
        ).decode(String.self) {
            if let policy = try? JSONDecoder().decode(FlakyPolicy.self, from: Data(text.utf8)) { return policy }
        }
        return .default
    }

    public func flakyPolicy(projectID: String) async throws -> FlakyPolicyRecord {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            for try await (text, by, at) in try await connection.query(
                "SELECT flaky_policy::text, updated_by, updated_at FROM project_settings WHERE workspace_id = \(ws) AND project_id = \(projectID)",
                logger: logger
            ).decode((String, String, Date).self) {
                if let policy = try? JSONDecoder().decode(FlakyPolicy.self, from: Data(text.utf8)) {
                    return FlakyPolicyRecord(policy: policy, updatedBy: by, updatedAt: at)
                }
            }
            return FlakyPolicyRecord(policy: .default, updatedBy: nil, updatedAt: nil)
        }
    }

    /// Stores the policy and rescores every window of the project under it, in one transaction; cases
    /// that become flaky by the new policy get their `flaky.detected` event like any other.
    public func setFlakyPolicy(projectID: String, policy: FlakyPolicy, by auditActor: AuditActor) async throws -> FlakyPolicyRecord {
        let actor = auditActor.id
        let (logger, ws) = (self.logger, workspaceID)
        let json = String(decoding: try JSONEncoder().encode(policy), as: UTF8.self)
        return try await server.transaction { connection in
            try await connection.query(
                "SELECT pg_advisory_xact_lock(hashtextextended(\(ws + "/" + projectID), 7))", logger: logger)
            var updatedAt = Date()
            for try await at in try await connection.query(
                """
                INSERT INTO project_settings (workspace_id, project_id, flaky_policy, updated_by)
                VALUES (\(ws), \(projectID), \(json)::jsonb, \(actor))
                ON CONFLICT (workspace_id, project_id) DO UPDATE SET
                    flaky_policy = EXCLUDED.flaky_policy, updated_by = EXCLUDED.updated_by, updated_at = now()
                RETURNING updated_at
                """, logger: logger
            ).decode(Date.self) {
                updatedAt = at
            }
            var caseIDs: [String] = []
            var branches: [String] = []
            var verdicts: [FlakyVerdict] = []
            // Per case, the window its verdict is lifted from (the same choice as `liftVerdicts`).
            var chosen: [String: FlakyWindowVerdict] = [:]
            for try await (caseID, branch, outcomes, runs) in try await connection.query(
                """
                SELECT case_id, branch, outcomes, evidence FROM case_windows
                WHERE workspace_id = \(ws) AND project_id = \(projectID) FOR UPDATE
                """, logger: logger
            ).decode((String, String, String, [String]).self) {
                let window = FlakyWindowVerdict(
                    branch: branch, verdict: FlakyHistory(outcomes: outcomes, evidence: runs).verdict(policy), evidence: runs)
                caseIDs.append(caseID)
                branches.append(branch)
                verdicts.append(window.verdict)
                if chosen[caseID].map({ window.outranks($0) }) ?? true { chosen[caseID] = window }
            }
            if !caseIDs.isEmpty {
                try await connection.query(
                    """
                    UPDATE case_windows w SET results = t.results, flips = t.flips, retry_passes = t.retry_passes,
                           score = t.score, is_flaky = t.is_flaky
                    FROM UNNEST(\(caseIDs)::text[], \(branches)::text[], \(verdicts.map(\.results))::int[],
                                \(verdicts.map(\.flips))::int[], \(verdicts.map(\.retryPasses))::int[],
                                \(verdicts.map(\.score))::float8[], \(verdicts.map(\.isFlaky))::bool[])
                         AS t(case_id, branch, results, flips, retry_passes, score, is_flaky)
                    WHERE w.workspace_id = \(ws) AND w.case_id = t.case_id AND w.branch = t.branch
                    """, logger: logger)
                let became = try await RollUp.liftVerdicts(
                    caseIDs: Array(chosen.keys), workspaceID: ws, on: connection, logger: logger)
                try await RollUp.recordFlakyDetected(
                    became, windows: chosen, detail: ["reason": "policy"], projectID: projectID, workspaceID: ws,
                    on: connection, logger: logger)
            }
            try await AuditSQL.insert(
                NewAuditEvent(
                    workspaceID: ws, actor: auditActor, action: "flaky_policy.updated", targetType: "project", targetID: projectID,
                    details: ["threshold": .double(policy.threshold), "window": .int(policy.window)]),
                into: .workspace, on: connection, logger: logger)
            return FlakyPolicyRecord(policy: policy, updatedBy: actor, updatedAt: updatedAt)
        }
    }

    /// Flaky cases of the project, highest score first; pages by keyset on (score, case id). The page is taken from
    /// the flaky stats alone (their index order) before the cases and windows are joined, whatever the planner's
    /// estimates: joined first, the same answer took p50 63 ms in one run of `ops/load.sh history` and 5 ms in
    /// another (4,600 of 10,000 cases flaky in both).
    public func flakyCases(projectID: String, after: (score: Double, caseID: String)?, limit: Int) async throws -> [FlakyCaseRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        let score = after?.score ?? 2
        let caseID = after?.caseID ?? ""
        return try await server.run { connection in
            var out: [FlakyCaseRecord] = []
            let rows = try await connection.query(
                """
                SELECT c.id, c.name, c.suite, s.last_status, s.flaky_score, w.branch, s.flaky_since, w.results, w.flips,
                       w.retry_passes, w.last_flip_at, w.evidence
                FROM (SELECT * FROM case_stats s
                      WHERE s.workspace_id = \(ws) AND s.project_id = \(projectID) AND s.is_flaky
                        AND (s.flaky_score < \(score) OR (s.flaky_score = \(score) AND s.case_id > \(caseID)))
                      ORDER BY s.flaky_score DESC, s.case_id ASC LIMIT \(limit)) s
                JOIN cases c ON c.workspace_id = s.workspace_id AND c.id = s.case_id
                JOIN case_windows w ON w.workspace_id = s.workspace_id AND w.case_id = s.case_id AND w.branch = s.flaky_branch
                ORDER BY s.flaky_score DESC, s.case_id ASC
                """, logger: logger)
            for try await row in rows {
                let r = try row.decode((String, String, String?, String, Double, String, Date?, Int, Int, Int, Date?, [String]).self)
                out.append(
                    FlakyCaseRecord(
                        caseID: r.0, name: r.1, suite: r.2, lastStatus: CaseStatus(rawValue: r.3) ?? .broken, score: r.4,
                        branch: r.5, flakySince: r.6, results: r.7, flips: r.8, retryPasses: r.9, lastFlipAt: r.10,
                        evidenceRunIDs: r.11.reversed()))
            }
            return out
        }
    }

    public func rollUp(runIDs: [String], inOrder: Bool) async throws -> RollUpOutcome {
        do {
            let done = try await RollUp(server: server, workspaceID: workspaceID, logger: logger).rollUp(
                runIDs: runIDs, inOrder: inOrder)
            return done ? .rolledUp : .alreadyRolledUp
        } catch RollUpError.waitingForEarlierRun(let id) {
            return .waiting(forRunID: id)
        }
    }
}
