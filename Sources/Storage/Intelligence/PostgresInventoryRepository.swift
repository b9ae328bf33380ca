import Domains
import Foundation
import Logging
import PostgresNIO
import Tenancy

/// A workspace's case inventory with roll-ups and annotations, in PostgreSQL.
public struct PostgresInventoryRepository: InventoryRepository {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    public init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    static let caseColumns = """
        c.id, c.project_id, c.case_key, c.name, c.suite, c.file, s.last_status, s.last_run_id, s.first_seen_at,
        s.last_seen_at, s.last_failed_at, s.runs, s.passed, s.failed, s.broken, s.skipped, s.flaky, s.total_duration_ms,
        c.owner, c.labels, c.annotated_by, c.annotated_at, s.is_flaky, s.flaky_score
        """

    /// A page of a project's inventory. Filters and orders are fixed SQL; only values are bound.
    public func cases(projectID: String, filter: CaseFilter, sort: CaseSort, after: PagePosition?, limit: Int) async throws
        -> [CaseSummaryRecord]
    {
        var binds = PostgresBindings()
        func bind(_ value: some PostgresNonThrowingEncodable) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        let (ws, project) = (bind(workspaceID), bind(projectID))
        // Both sides name the project, so the planner can walk either side's order index.
        var caseConditions = ["c.workspace_id = \(ws)", "c.project_id = \(project)"]
        var statsConditions = ["s.workspace_id = \(ws)", "s.project_id = \(project)"]
        if let status = filter.lastStatus { statsConditions.append("s.last_status = \(bind(status.rawValue))") }
        if let suite = filter.suite { caseConditions.append("c.suite = \(bind(suite))") }
        if let text = filter.text, !text.isEmpty {
            let pattern = bind("%" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%")
            caseConditions.append("(c.name ILIKE \(pattern) OR c.suite ILIKE \(pattern) OR c.case_key ILIKE \(pattern))")
        }
        if filter.flakyOnly { statsConditions.append("s.is_flaky") }
        if let label = filter.label {
            // The predicate of the partial index on labels: only annotated cases are in it.
            caseConditions.append("c.labels <> '{}'::text[] AND c.labels @> ARRAY[\(bind(label))]::text[]")
        }
        if let owner = filter.owner { caseConditions.append("c.owner = \(bind(owner))") }
        let filtersCases = caseConditions.count > 2
        let order: String
        switch sort {
        case .name:
            order = "c.name ASC, c.id ASC"
            if let after { caseConditions.append("(c.name, c.id) > (\(bind(after.text ?? "")), \(bind(after.id)))") }
        case .failures, .lastFailed:
            let key = sort == .failures
                ? "(s.failed + s.broken)::bigint"
                : "COALESCE((extract(epoch FROM s.last_failed_at) * 1000)::bigint, 0)"
            order = "\(key) DESC, s.case_id ASC"
            if let after {
                let value = bind(after.number ?? 0)
                statsConditions.append("(\(key) < \(value) OR (\(key) = \(value) AND s.case_id > \(bind(after.id))))")
            }
        }
        let limitValue = bind(limit)
        let sql: String
        if sort != .name && !filtersCases {
            // Orders of the stats with no filter on the inventory: the page is taken from the project's stats
            // alone and only its rows are joined — no index serves these orders (an index on the failure count
            // made a tenth of each roll-up's stats updates leave the page; migration 19), and sorting the stats
            // before the join costs a third less (psql, 100,000 cases: 59–61 ms against 91–97 ms).
            sql = """
                SELECT \(Self.caseColumns)
                FROM (SELECT * FROM case_stats s WHERE \(statsConditions.joined(separator: " AND ")) ORDER BY \(order) LIMIT \(limitValue)) s
                JOIN cases c ON c.workspace_id = s.workspace_id AND c.id = s.case_id
                WHERE \(caseConditions.joined(separator: " AND "))
                ORDER BY \(order)
                """
        } else {
            sql = """
                SELECT \(Self.caseColumns)
                FROM cases c JOIN case_stats s ON s.workspace_id = c.workspace_id AND s.case_id = c.id
                WHERE \((caseConditions + statsConditions).joined(separator: " AND "))
                ORDER BY \(order) LIMIT \(limitValue)
                """
        }
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

    public func sameCommitEvidence(caseID: String) async throws -> SameCommitEvidence? {
        let (logger, ws) = (self.logger, workspaceID)
        return try await server.run { connection in
            for try await (commit, runs, at) in try await connection.query(
                """
                SELECT same_commit_sha, same_commit_runs, same_commit_at FROM case_stats
                WHERE workspace_id = \(ws) AND case_id = \(caseID) AND same_commit_sha IS NOT NULL
                """, logger: logger
            ).decode((String, [String], Date).self) where runs.count == 2 {
                return SameCommitEvidence(commit: commit, passedRunID: runs[0], failedRunID: runs[1], seenAt: at)
            }
            return nil
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
                WHERE r.workspace_id = \(ws) AND r.case_id = \(caseID) AND u.seq IS NOT NULL
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
        id: String, owner: String??, labels: [String]?, defectIDs: [String]?, by auditActor: AuditActor
    ) async throws -> Bool {
        let (logger, ws) = (self.logger, workspaceID)
        let actor = auditActor.id
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
            var details: [String: JSONValue] = ["project": .string(projectID)]
            if let owner { details["owner"] = owner.map(JSONValue.string) ?? .null }
            if let labels { details["labels"] = .array(labels.map(JSONValue.string)) }
            if let defectIDs { details["defects"] = .array(defectIDs.map(JSONValue.string)) }
            try await AuditSQL.insert(
                NewAuditEvent(
                    workspaceID: ws, actor: auditActor, action: "case.annotated", targetType: "case", targetID: id, details: details),
                into: .workspace, on: connection, logger: logger)
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
                try await PostgresDefectRepository.recountDefectRuns(defectID: defect, workspaceID: ws, on: connection, logger: logger)
            }
            return true
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
    public func caseWindows(caseID: String, nowMilliseconds now: UInt64) async throws -> [CaseWindowRecord] {
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
