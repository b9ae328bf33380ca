import Domains
import Foundation
import Logging
import PostgresNIO

/// A case of a project's inventory with its rolled-up history (`case_stats`, kept by post-ingest jobs).
public struct CaseSummaryRecord: Sendable, Hashable {
    public let id: String
    public let projectID: String
    public let key: String
    public let name: String
    public let suite: String?
    public let file: String?
    public let lastStatus: CaseStatus
    public let lastRunID: String
    public let firstSeenAt: Date
    public let lastSeenAt: Date
    public let lastFailedAt: Date?
    public let runs: Int
    public let passed: Int
    public let failed: Int
    public let broken: Int
    public let skipped: Int
    public let flaky: Int
    public let totalDurationMs: Int64
    public let owner: String?
    public let labels: [String]
    public let annotatedBy: String?
    public let annotatedAt: Date?
    public let isFlaky: Bool
    public let flakyScore: Double
}

/// Orders of the inventory; each pages by keyset on (its key, id).
public enum CaseSort: String, Sendable, CaseIterable {
    case name
    /// Most failures (failed + broken) first.
    case failures = "-failures"
    /// Most recently failed first; never-failed cases last.
    case lastFailed = "-lastFailedAt"
}

public struct CaseFilter: Sendable {
    public var lastStatus: CaseStatus?
    public var suite: String?
    /// Case-insensitive substring of the name, suite or key.
    public var text: String?
    /// Only cases the flakiness scoring currently calls flaky.
    public var flakyOnly = false
    public var label: String?
    public var owner: String?

    public init(
        lastStatus: CaseStatus? = nil, suite: String? = nil, text: String? = nil, flakyOnly: Bool = false,
        label: String? = nil, owner: String? = nil
    ) {
        self.lastStatus = lastStatus
        self.suite = suite
        self.text = text
        self.flakyOnly = flakyOnly
        self.label = label
        self.owner = owner
    }
}

/// Where a page ends: the sort key of its last case (text or number) and that case's id.
public struct CasePosition: Sendable, Hashable, Codable {
    public let text: String?
    public let number: Int64?
    public let id: String

    public init(text: String?, number: Int64?, id: String) {
        self.text = text
        self.number = number
        self.id = id
    }
}

extension TenantStore {
    static let caseColumns = """
        c.id, c.project_id, c.case_key, c.name, c.suite, c.file, s.last_status, s.last_run_id, s.first_seen_at,
        s.last_seen_at, s.last_failed_at, s.runs, s.passed, s.failed, s.broken, s.skipped, s.flaky, s.total_duration_ms,
        c.owner, c.labels, c.annotated_by, c.annotated_at, s.is_flaky, s.flaky_score
        """

    /// A page of a project's inventory. Filters and orders are fixed SQL; only values are bound.
    public func cases(projectID: String, filter: CaseFilter, sort: CaseSort, after: CasePosition?, limit: Int) async throws
        -> [CaseSummaryRecord]
    {
        var binds = PostgresBindings()
        func bind(_ value: some PostgresNonThrowingEncodable) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        let (ws, project) = (bind(workspaceID), bind(projectID))
        // Both sides name the project, so the planner can walk either side's order index.
        var conditions = [
            "c.workspace_id = \(ws)", "c.project_id = \(project)", "s.workspace_id = \(ws)", "s.project_id = \(project)",
        ]
        if let status = filter.lastStatus { conditions.append("s.last_status = \(bind(status.rawValue))") }
        if let suite = filter.suite { conditions.append("c.suite = \(bind(suite))") }
        if let text = filter.text, !text.isEmpty {
            let pattern = bind("%" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%")
            conditions.append("(c.name ILIKE \(pattern) OR c.suite ILIKE \(pattern) OR c.case_key ILIKE \(pattern))")
        }
        if filter.flakyOnly { conditions.append("s.is_flaky") }
        if let label = filter.label { conditions.append("c.labels @> ARRAY[\(bind(label))]::text[]") }
        if let owner = filter.owner { conditions.append("c.owner = \(bind(owner))") }
        let key: String
        let order: String
        switch sort {
        case .name:
            key = "c.name"
            order = "c.name ASC, c.id ASC"
            if let after { conditions.append("(c.name, c.id) > (\(bind(after.text ?? "")), \(bind(after.id)))") }
        case .failures, .lastFailed:
            key = sort == .failures
                ? "(s.failed + s.broken)::bigint"
                : "COALESCE((extract(epoch FROM s.last_failed_at) * 1000)::bigint, 0)"
            order = "\(key) DESC, s.case_id ASC"
            if let after {
                let value = bind(after.number ?? 0)
                conditions.append("(\(key) < \(value) OR (\(key) = \(value) AND s.case_id > \(bind(after.id))))")
            }
        }
        let sql = """
            SELECT \(Self.caseColumns)
            FROM cases c JOIN case_stats s ON s.workspace_id = c.workspace_id AND s.case_id = c.id
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(order) LIMIT \(bind(limit))
            """
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        let logger = self.logger
        return try await server.run { connection in
            try await Self.decodeCases(try await connection.query(query, logger: logger))
        }
    }

    /// One case of this workspace with its roll-up, or nil (unknown, or not rolled up yet).
    public func caseSummary(id: String) async throws -> CaseSummaryRecord? {
        let (logger, ws) = (self.logger, workspaceID)
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT \(Self.caseColumns)
                FROM cases c JOIN case_stats s ON s.workspace_id = c.workspace_id AND s.case_id = c.id
                WHERE c.workspace_id = $1 AND c.id = $2
                """,
            binds: {
                var binds = PostgresBindings()
                binds.append(ws)
                binds.append(id)
                return binds
            }())
        return try await server.run { connection in
            try await Self.decodeCases(try await connection.query(query, logger: logger)).first
        }
    }

    /// The case's latest results on every branch, newest first.
    public func recentResults(caseID: String, limit: Int) async throws -> [CaseHistoryEntry] {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            let rows = try await connection.query(
                """
                SELECT u.id, u.external_run_id, u.branch, r.status, r.duration_ms, r.error_message, u.created_at
                FROM case_results r JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
                WHERE r.workspace_id = \(ws) AND r.case_id = \(caseID)
                ORDER BY u.created_at DESC, u.id DESC LIMIT \(limit)
                """, logger: logger)
            return try await Self.historyEntries(rows)
        }
    }

    /// Rows of (run id, external id, branch, status, duration, error message, created at).
    static func historyEntries(_ rows: PostgresRowSequence) async throws -> [CaseHistoryEntry] {
        var result: [CaseHistoryEntry] = []
        for try await (run, external, branch, status, duration, message, created) in rows.decode(
            (String, String, String, String, Int64, String?, Date).self)
        {
            result.append(
                CaseHistoryEntry(
                    runID: run, externalRunId: external, branch: branch,
                    status: CaseStatus(rawValue: status) ?? .broken, durationMs: duration, errorMessage: message,
                    createdAt: created))
        }
        return result
    }

    static func decodeCases(_ rows: PostgresRowSequence) async throws -> [CaseSummaryRecord] {
        var out: [CaseSummaryRecord] = []
        for try await row in rows {
            let c = try row.decode(
                (String, String, String, String, String?, String?, String, String, Date, Date, Date?, Int32, Int32, Int32,
                 Int32, Int32, Int32, Int64, String?, [String], String?, Date?, Bool, Double).self)
            let a = (c.18, c.19, c.20, c.21, c.22, c.23)
            out.append(
                CaseSummaryRecord(
                    id: c.0, projectID: c.1, key: c.2, name: c.3, suite: c.4, file: c.5,
                    lastStatus: CaseStatus(rawValue: c.6) ?? .broken, lastRunID: c.7, firstSeenAt: c.8, lastSeenAt: c.9,
                    lastFailedAt: c.10, runs: Int(c.11), passed: Int(c.12), failed: Int(c.13), broken: Int(c.14),
                    skipped: Int(c.15), flaky: Int(c.16), totalDurationMs: c.17, owner: a.0, labels: a.1, annotatedBy: a.2,
                    annotatedAt: a.3, isFlaky: a.4, flakyScore: a.5))
        }
        return out
    }

    /// Sets what people say about a case: labels and owner (nil fields unchanged; an empty owner clears
    /// it) and the defects it is linked to (replacing the set), recording who and when. Returns false
    /// when the case is not in this workspace. Defect ids must have been checked to be the project's.
    public func annotateCase(
        id: String, owner: String??, labels: [String]?, defectIDs: [String]?, by actor: String
    ) async throws -> Bool {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.transaction { connection in
            var projectID: String?
            let setOwner = owner != nil
            let newOwner = owner ?? nil
            for try await project in try await connection.query(
                """
                UPDATE cases SET owner = CASE WHEN \(setOwner) THEN \(newOwner) ELSE owner END,
                       labels = COALESCE(\(labels)::text[], labels), annotated_by = \(actor), annotated_at = now()
                WHERE workspace_id = \(ws) AND id = \(id) RETURNING project_id
                """, logger: logger
            ).decode(String.self) {
                projectID = project
            }
            guard let projectID else { return false }
            guard let defectIDs else { return true }
            var touched = Set(defectIDs)
            for try await defect in try await connection.query(
                """
                DELETE FROM defect_links WHERE workspace_id = \(ws) AND kind = 'case' AND target = \(id)
                  AND NOT (defect_id = ANY(\(defectIDs)::text[])) RETURNING defect_id
                """, logger: logger
            ).decode(String.self) {
                touched.insert(defect)
            }
            try await connection.query(
                """
                INSERT INTO defect_links (workspace_id, defect_id, project_id, kind, target, linked_by)
                SELECT \(ws), d, \(projectID), 'case', \(id), \(actor) FROM UNNEST(\(defectIDs)::text[]) AS d
                ON CONFLICT DO NOTHING
                """, logger: logger)
            for defect in touched.sorted() {
                try await Self.recountDefectRuns(defectID: defect, workspaceID: ws, on: connection, logger: logger)
            }
            return true
        }
    }

    /// Which of `ids` are defects of the project.
    public func existingDefects(projectID: String, ids: [String]) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            var found = Set<String>()
            for try await id in try await connection.query(
                "SELECT id FROM defects WHERE workspace_id = \(ws) AND project_id = \(projectID) AND id = ANY(\(ids)::text[])",
                logger: logger
            ).decode(String.self) {
                found.insert(id)
            }
            return found
        }
    }

    /// The project of a case in this workspace, whether or not it has been rolled up yet.
    public func caseProject(id: String) async throws -> String? {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            for try await project in try await connection.query(
                "SELECT project_id FROM cases WHERE workspace_id = \(ws) AND id = \(id)", logger: logger
            ).decode(String.self) {
                return project
            }
            return nil
        }
    }

    /// Pass rate and median duration of the case's unskipped results over the last 7, 30 and 90 days.
    /// Run ids are ULIDs, so "runs since T" is a range of the (case, run) index, not a scan.
    public func caseWindows(caseID: String, now: UInt64 = Clock.nowMilliseconds()) async throws -> [CaseWindowRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        let day: UInt64 = 86_400_000
        let bounds = [7, 30, 90].map { ResourceID.make(.run, milliseconds: now - UInt64($0) * day) }
        return try await server.run { connection in
            var out: [CaseWindowRecord] = []
            let rows = try await connection.query(
                """
                SELECT count(*) FILTER (WHERE run_id >= \(bounds[0]))::int,
                       count(*) FILTER (WHERE run_id >= \(bounds[0]) AND status = 'passed')::int,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE run_id >= \(bounds[0])),
                       count(*) FILTER (WHERE run_id >= \(bounds[1]))::int,
                       count(*) FILTER (WHERE run_id >= \(bounds[1]) AND status = 'passed')::int,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE run_id >= \(bounds[1])),
                       count(*)::int, count(*) FILTER (WHERE status = 'passed')::int,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)
                FROM case_results
                WHERE workspace_id = \(ws) AND case_id = \(caseID) AND run_id >= \(bounds[2]) AND status <> 'skipped'
                """, logger: logger)
            for try await r in rows.decode((Int, Int, Double?, Int, Int, Double?, Int, Int, Double?).self) {
                out = [(7, r.0, r.1, r.2), (30, r.3, r.4, r.5), (90, r.6, r.7, r.8)].map { days, results, passed, median in
                    CaseWindowRecord(
                        days: days, results: results, passRate: results > 0 ? Double(passed) / Double(results) : nil,
                        medianDurationMs: median)
                }
            }
            return out
        }
    }
}

public struct CaseWindowRecord: Sendable, Hashable {
    public let days: Int
    public let results: Int
    public let passRate: Double?
    public let medianDurationMs: Double?
}
