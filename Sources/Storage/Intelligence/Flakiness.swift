import Domains
import Foundation
import Logging
import PostgresNIO

/// A project's flaky policy and who set it; `updatedBy` is nil while the default applies.
public struct FlakyPolicyRecord: Sendable, Hashable {
    public let policy: FlakyPolicy
    public let updatedBy: String?
    public let updatedAt: Date?
}

/// A flaky case as `GET /v1/projects/:slug/flaky` lists it: its flakiest branch's window.
public struct FlakyCaseRecord: Sendable, Hashable {
    public let caseID: String
    public let name: String
    public let suite: String?
    public let lastStatus: CaseStatus
    public let score: Double
    public let branch: String
    public let flakySince: Date?
    public let results: Int
    public let flips: Int
    public let retryPasses: Int
    public let lastFlipAt: Date?
    public let evidenceRunIDs: [String]
}

extension TenantStore {
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
    public func setFlakyPolicy(projectID: String, policy: FlakyPolicy, by actor: String) async throws -> FlakyPolicyRecord {
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
                let became = try await Self.liftVerdicts(
                    caseIDs: Array(chosen.keys), workspaceID: ws, on: connection, logger: logger)
                try await Self.recordFlakyDetected(
                    became, windows: chosen, detail: ["reason": "policy"], projectID: projectID, workspaceID: ws,
                    on: connection, logger: logger)
            }
            return FlakyPolicyRecord(policy: policy, updatedBy: actor, updatedAt: updatedAt)
        }
    }

    /// Flaky cases of the project, highest score first; pages by keyset on (score, case id).
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
                FROM case_stats s
                JOIN cases c ON c.workspace_id = s.workspace_id AND c.id = s.case_id
                JOIN case_windows w ON w.workspace_id = s.workspace_id AND w.case_id = s.case_id AND w.branch = s.flaky_branch
                WHERE s.workspace_id = \(ws) AND s.project_id = \(projectID) AND s.is_flaky
                  AND (s.flaky_score < \(score) OR (s.flaky_score = \(score) AND s.case_id > \(caseID)))
                ORDER BY s.flaky_score DESC, s.case_id ASC LIMIT \(limit)
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
}
