import Domains
import Foundation
import Logging
import PostgresNIO

/// Everything one finalize writes.
public struct NewRun: Sendable {
    public let id: String
    public let projectID: String
    public let run: ValidatedRun
    public let baselineRunID: String?
    public let regression: RegressionSummary
    /// Per case, in `run.cases` order.
    public let buckets: [RegressionBucket?]
    public let seq: Int64
    /// Attachments of the run that are stored (declared at init and present in the blob store).
    public let attachments: [DeclaredAttachment]

    public init(
        id: String, projectID: String, run: ValidatedRun, baselineRunID: String?, regression: RegressionSummary,
        buckets: [RegressionBucket?], seq: Int64, attachments: [DeclaredAttachment]
    ) {
        self.id = id
        self.projectID = projectID
        self.run = run
        self.baselineRunID = baselineRunID
        self.regression = regression
        self.buckets = buckets
        self.seq = seq
        self.attachments = attachments
    }
}

extension TenantStore {
    /// Writes the run, its cases, results, steps and attachment links in one transaction, each table
    /// with one `INSERT … SELECT FROM UNNEST(…)` of column arrays: a handful of statements whatever the
    /// size of the run, and either the whole run is stored or nothing is.
    public func persist(_ new: NewRun) async throws -> RunRecord {
        let (logger, ws) = (self.logger, workspaceID)
        let run = new.run
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let env = String(decoding: try encoder.encode(run.env), as: UTF8.self)

        let c = try RunColumns(run, buckets: new.buckets, encoder: encoder)
        let attIDs = new.attachments.map(\.id), attShas = new.attachments.map(\.sha256),
            attSizes = new.attachments.map(\.size), attTypes = new.attachments.map(\.contentType)
        let totals = run.totals
        let summary = new.regression

        return try await server.transaction { connection in
            try await connection.query(
                """
                INSERT INTO cases (workspace_id, id, project_id, case_key, name, suite, full_name, file)
                SELECT \(ws), u.id, \(new.projectID), u.key, u.name, NULLIF(u.suite, ''), NULLIF(u.full_name, ''), NULLIF(u.file, '')
                FROM UNNEST(\(c.newIDs)::text[], \(c.keys)::text[], \(c.names)::text[], \(c.suites)::text[], \(c.fullNames)::text[], \(c.files)::text[])
                     AS u(id, key, name, suite, full_name, file)
                ON CONFLICT (workspace_id, project_id, case_key) DO NOTHING
                """, logger: logger)
            let rows = try await connection.query(
                """
                INSERT INTO runs (workspace_id, id, project_id, external_run_id, branch, commit_sha, build_url, started_at,
                                  finished_at, env, passed, failed, skipped, broken, flaky, baseline_run_id,
                                  new_failures, fixed, still_failing, seq)
                VALUES (\(ws), \(new.id), \(new.projectID), \(run.externalRunId), \(run.branch), \(run.commit), \(run.buildURL),
                        \(run.startedAt), \(run.finishedAt), \(env)::jsonb, \(totals.passed), \(totals.failed),
                        \(totals.skipped), \(totals.broken), \(totals.flaky), \(new.baselineRunID), \(summary.newFailures),
                        \(summary.fixed), \(summary.stillFailing), \(new.seq))
                RETURNING created_at
                """, logger: logger)
            var createdAt = Date()
            for try await date in rows.decode(Date.self) { createdAt = date }
            // Results join the inventory by key, so a case row created by a concurrent run is found too.
            try await connection.query(
                """
                INSERT INTO case_results (workspace_id, run_id, ordinal, case_id, status, duration_ms, attempts, flaky,
                                          regression, error_type, error_message, error_trace, labels, parameters, attachments)
                SELECT \(ws), \(new.id), u.ordinal, c.id, u.status, u.duration, u.attempts, u.flaky, NULLIF(u.regression, ''),
                       NULLIF(u.error_type, ''), NULLIF(u.error_message, ''), NULLIF(u.error_trace, ''), u.labels::jsonb,
                       u.parameters::jsonb, CASE WHEN u.attachments = '' THEN '{}'::text[] ELSE string_to_array(u.attachments, E'\\x1f') END
                FROM UNNEST(\(c.ordinals)::integer[], \(c.keys)::text[], \(c.statuses)::text[], \(c.durations)::bigint[],
                            \(c.attempts)::integer[], \(c.flaky)::boolean[], \(c.regression)::text[], \(c.errorTypes)::text[],
                            \(c.errorMessages)::text[], \(c.errorTraces)::text[], \(c.labels)::text[], \(c.parameters)::text[],
                            \(c.attachments)::text[])
                     AS u(ordinal, key, status, duration, attempts, flaky, regression, error_type, error_message,
                          error_trace, labels, parameters, attachments)
                JOIN cases c ON c.workspace_id = \(ws) AND c.project_id = \(new.projectID) AND c.case_key = u.key
                """, logger: logger)
            if !c.stepCase.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO steps (workspace_id, run_id, case_ordinal, ordinal, parent, depth, name, status, duration_ms, attachments)
                    SELECT \(ws), \(new.id), u.c, u.o, NULLIF(u.p, -1), u.d, u.n, u.s, u.ms,
                           CASE WHEN u.a = '' THEN '{}'::text[] ELSE string_to_array(u.a, E'\\x1f') END
                    FROM UNNEST(\(c.stepCase)::integer[], \(c.stepOrdinal)::integer[], \(c.stepParent)::integer[], \(c.stepDepth)::integer[],
                                \(c.stepName)::text[], \(c.stepStatus)::text[], \(c.stepDuration)::bigint[], \(c.stepAttachments)::text[])
                         AS u(c, o, p, d, n, s, ms, a)
                    """, logger: logger)
            }
            if !attIDs.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO run_attachments (workspace_id, run_id, attachment_id, sha256, size, content_type)
                    SELECT \(ws), \(new.id), * FROM UNNEST(\(attIDs)::text[], \(attShas)::text[], \(attSizes)::bigint[], \(attTypes)::text[])
                    """, logger: logger)
            }
            // The post-ingest job commits with the run, so no stored run lacks its roll-up.
            try await JobQueue.enqueue(
                workspaceID: ws, kind: JobQueue.rollupKind, payload: #"{"runId":"\#(new.id)"}"#, on: connection,
                logger: logger)
            return RunRecord(
                id: new.id, projectID: new.projectID, externalRunId: run.externalRunId, branch: run.branch,
                commit: run.commit, buildURL: run.buildURL, status: "closed", startedAt: run.startedAt,
                finishedAt: run.finishedAt, env: run.env, totals: totals, baselineRunID: new.baselineRunID,
                regression: summary, seq: new.seq, createdAt: createdAt)
        }
    }

    /// Lists travel as one text per row (arrays of arrays do not UNNEST), split in SQL on U+001F.
    static func joinList(_ items: [String]) -> String {
        items.joined(separator: "\u{1F}")
    }
}

/// The run as column arrays, one per table column, ready for UNNEST.
struct RunColumns: Sendable {
    var newIDs = [String](), keys = [String](), names = [String](), suites = [String](), fullNames = [String](),
        files = [String]()
    var ordinals = [Int32](), statuses = [String](), durations = [Int64](), attempts = [Int32](), flaky = [Bool](),
        regression = [String](), errorTypes = [String](), errorMessages = [String](), errorTraces = [String](),
        labels = [String](), parameters = [String](), attachments = [String]()
    var stepCase = [Int32](), stepOrdinal = [Int32](), stepParent = [Int32](), stepDepth = [Int32](),
        stepName = [String](), stepStatus = [String](), stepDuration = [Int64](), stepAttachments = [String]()

    init(_ run: ValidatedRun, buckets: [RegressionBucket?], encoder: JSONEncoder) throws {
        let count = run.cases.count
        newIDs.reserveCapacity(count)
        let now = Clock.nowMilliseconds()
        for item in run.cases {
            newIDs.append(ResourceID.make(.testCase, milliseconds: now))
            keys.append(item.key)
            names.append(item.name)
            suites.append(item.suite ?? "")
            fullNames.append(item.fullName ?? "")
            files.append(item.file ?? "")
        }
        for (index, item) in run.cases.enumerated() {
            ordinals.append(Int32(index))
            statuses.append(item.status.rawValue)
            durations.append(item.durationMs)
            attempts.append(Int32(item.attempts))
            flaky.append(item.flaky)
            regression.append(buckets[index]?.rawValue ?? "")
            errorTypes.append(item.error?.type ?? "")
            errorMessages.append(item.error?.message ?? "")
            errorTraces.append(item.error?.trace ?? "")
            labels.append(item.labels.isEmpty ? "{}" : String(decoding: try encoder.encode(item.labels), as: UTF8.self))
            parameters.append(
                item.parameters.isEmpty ? "{}" : String(decoding: try encoder.encode(item.parameters), as: UTF8.self))
            attachments.append(TenantStore.joinList(item.attachments))
            for step in item.steps {
                stepCase.append(Int32(index))
                stepOrdinal.append(Int32(step.ordinal))
                stepParent.append(Int32(step.parent ?? -1))
                stepDepth.append(Int32(step.depth))
                stepName.append(step.name)
                stepStatus.append(step.status.rawValue)
                stepDuration.append(step.durationMs)
                stepAttachments.append(TenantStore.joinList(step.attachments))
            }
        }
    }
}
