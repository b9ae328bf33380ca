import Domains
import Foundation
import Logging
import PostgresNIO

/// The failures of one run grouped by fingerprint.
public struct RunFailureGroupRecord: Sendable, Hashable {
    public let fingerprint: String
    public let errorType: String?
    public let sampleMessage: String?
    public let count: Int
    /// Up to 20 (case id, name) pairs, in run order.
    public let cases: [CaseRef]
    /// The run in which the project first saw this cluster; nil until this run's roll-up ran.
    public let firstSeenRunID: String?

    public struct CaseRef: Sendable, Hashable {
        public let id: String
        public let name: String
    }
}

/// A cluster across a project's history (`failure_groups`, kept by the post-ingest roll-up).
public struct FailureGroupRecord: Sendable, Hashable {
    public let fingerprint: String
    public let errorType: String?
    public let sampleMessage: String?
    public let firstSeenRunID: String
    public let firstSeenAt: Date
    public let lastSeenRunID: String
    public let lastSeenAt: Date
    public let runs: Int
    public let occurrences: Int
    /// `lastSeenAt` in microseconds, exact, for page cursors.
    public let lastSeenMicros: Int64
    /// Distinct cases the cluster struck, all runs.
    public let affectedCases: Int
    /// Up to 5 of them, most recently struck first.
    public let recentCases: [RunFailureGroupRecord.CaseRef]
}

extension TenantStore {
    public func runFailureGroups(runID: String) async throws -> [RunFailureGroupRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var out: [RunFailureGroupRecord] = []
            let rows = try await connection.query(
                """
                SELECT r.fingerprint, min(r.error_type), min(left(r.error_message, 500)), count(*)::int,
                       (array_agg(r.case_id ORDER BY r.ordinal))[1:20], (array_agg(c.name ORDER BY r.ordinal))[1:20],
                       g.first_seen_run_id
                FROM case_results r
                JOIN cases c ON c.workspace_id = r.workspace_id AND c.id = r.case_id
                LEFT JOIN failure_groups g
                       ON g.workspace_id = r.workspace_id AND g.project_id = c.project_id AND g.fingerprint = r.fingerprint
                WHERE r.workspace_id = \(ws) AND r.run_id = \(runID) AND r.fingerprint IS NOT NULL
                GROUP BY r.fingerprint, g.first_seen_run_id
                ORDER BY count(*) DESC, r.fingerprint
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
                    SELECT array_agg(t.case_id ORDER BY t.last_seen_at DESC, t.case_id) AS ids,
                           array_agg(t.name ORDER BY t.last_seen_at DESC, t.case_id) AS names
                    FROM (SELECT fc.case_id, fc.last_seen_at, c.name FROM failure_group_cases fc
                          JOIN cases c ON c.workspace_id = fc.workspace_id AND c.id = fc.case_id
                          WHERE fc.workspace_id = g.workspace_id AND fc.project_id = g.project_id AND fc.fingerprint = g.fingerprint
                          ORDER BY fc.last_seen_at DESC, fc.case_id LIMIT 5) t) recent ON true
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
}
