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
    public var flakyOnly = false

    public init(lastStatus: CaseStatus? = nil, suite: String? = nil, text: String? = nil, flakyOnly: Bool = false) {
        self.lastStatus = lastStatus
        self.suite = suite
        self.text = text
        self.flakyOnly = flakyOnly
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
        s.last_seen_at, s.last_failed_at, s.runs, s.passed, s.failed, s.broken, s.skipped, s.flaky, s.total_duration_ms
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
        var conditions = [
            "c.workspace_id = \(bind(workspaceID))", "c.project_id = \(bind(projectID))",
        ]
        if let status = filter.lastStatus { conditions.append("s.last_status = \(bind(status.rawValue))") }
        if let suite = filter.suite { conditions.append("c.suite = \(bind(suite))") }
        if let text = filter.text, !text.isEmpty {
            let pattern = bind("%" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%")
            conditions.append("(c.name ILIKE \(pattern) OR c.suite ILIKE \(pattern) OR c.case_key ILIKE \(pattern))")
        }
        if filter.flakyOnly { conditions.append("s.flaky > 0") }
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
            order = "\(key) DESC, c.id ASC"
            if let after {
                let value = bind(after.number ?? 0)
                conditions.append("(\(key) < \(value) OR (\(key) = \(value) AND c.id > \(bind(after.id))))")
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
                 Int32, Int32, Int32, Int64).self)
            out.append(
                CaseSummaryRecord(
                    id: c.0, projectID: c.1, key: c.2, name: c.3, suite: c.4, file: c.5,
                    lastStatus: CaseStatus(rawValue: c.6) ?? .broken, lastRunID: c.7, firstSeenAt: c.8, lastSeenAt: c.9,
                    lastFailedAt: c.10, runs: Int(c.11), passed: Int(c.12), failed: Int(c.13), broken: Int(c.14),
                    skipped: Int(c.15), flaky: Int(c.16), totalDurationMs: c.17))
        }
        return out
    }
}
