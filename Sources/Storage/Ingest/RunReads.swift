import Domains
import Foundation
import Logging
import PostgresNIO

extension TenantStore {
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
        runID: String, status: CaseStatus?, bucket: RegressionBucket?, onlyRegressed: Bool = false, afterOrdinal: Int,
        limit: Int
    ) async throws -> [CaseResultRecord] {
        let (logger, ws) = (self.logger, workspaceID)
        let statusFilter = status?.rawValue ?? ""
        let bucketFilter = bucket?.rawValue ?? ""
        var query = PostgresQuery(
            unsafeSQL: Self.resultColumns + """
                 WHERE r.workspace_id = $1 AND r.run_id = $2 AND r.ordinal > $3
                   AND ($4 = '' OR r.status = $4) AND ($5 = '' OR r.regression = $5)
                   AND (NOT $7 OR r.regression IS NOT NULL)
                ORDER BY r.ordinal LIMIT $6
                """)
        query.binds.append(ws)
        query.binds.append(runID)
        query.binds.append(afterOrdinal)
        query.binds.append(statusFilter)
        query.binds.append(bucketFilter)
        query.binds.append(limit)
        query.binds.append(onlyRegressed)
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
            let rows = try await connection.query(
                """
                SELECT ordinal, parent, depth, name, status, duration_ms, attachments FROM steps
                WHERE workspace_id = \(ws) AND run_id = \(runID) AND case_ordinal = \(result.ordinal) ORDER BY ordinal
                """, logger: logger)
            for try await (ordinal, parent, depth, name, status, duration, attachments) in rows.decode(
                (Int, Int?, Int, String, String, Int64, [String]).self)
            {
                steps.append(
                    FlatStep(
                        ordinal: ordinal, parent: parent, depth: depth, name: name,
                        status: CaseStatus(rawValue: status) ?? .broken, durationMs: duration, attachments: attachments))
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
                ORDER BY u.seq DESC LIMIT \(limit)
                """, logger: logger)
            return try await Self.historyEntries(rows)
        }
    }
}
