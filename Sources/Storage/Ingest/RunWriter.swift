import Domains
import Foundation
import Logging
import NIOCore
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
    /// Inventory ids already known for case keys (the workspace actor's cache). Keys not in it are
    /// inserted or looked up in the transaction; the ids of a project's cases never change.
    public let knownCaseIDs: [String: String]

    public init(
        id: String, projectID: String, run: ValidatedRun, baselineRunID: String?, regression: RegressionSummary,
        buckets: [RegressionBucket?], seq: Int64, attachments: [DeclaredAttachment], knownCaseIDs: [String: String] = [:]
    ) {
        self.knownCaseIDs = knownCaseIDs
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
    /// What `persist` stored, and the inventory ids of the run's cases (for the caller's cache).
    public struct Persisted: Sendable {
        public let run: RunRecord
        public let caseIDs: [String: String]
    }

    /// Writes the run, its cases, results, steps and attachment links in one transaction: new cases
    /// with one `INSERT … SELECT FROM UNNEST(…)`, results and steps with `COPY`. A handful of
    /// statements whatever the size of the run, and either the whole run is stored or nothing is.
    public func persist(_ new: NewRun) async throws -> Persisted {
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

        // Only cases the cache does not know go through the inventory statements.
        let unknown = new.knownCaseIDs.isEmpty
            ? Array(run.cases.indices) : run.cases.indices.filter { new.knownCaseIDs[run.cases[$0].key] == nil }
        let inventory = InventoryColumns(run, indices: unknown)

        return try await server.transaction { connection in
            var caseIDs = new.knownCaseIDs
            if !inventory.keys.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO cases (workspace_id, id, project_id, case_key, name, suite, full_name, file)
                    SELECT \(ws), u.id, \(new.projectID), u.key, u.name, NULLIF(u.suite, ''), NULLIF(u.full_name, ''), NULLIF(u.file, '')
                    FROM UNNEST(\(inventory.newIDs)::text[], \(inventory.keys)::text[], \(inventory.names)::text[], \(inventory.suites)::text[], \(inventory.fullNames)::text[], \(inventory.files)::text[])
                         AS u(id, key, name, suite, full_name, file)
                    ON CONFLICT (workspace_id, project_id, case_key) DO NOTHING
                    """, logger: logger)
                // The ids of the unknown keys, new or inserted meanwhile by another node.
                caseIDs.reserveCapacity(caseIDs.count + inventory.keys.count)
                for try await (key, id) in try await connection.query(
                    """
                    SELECT case_key, id FROM cases
                    WHERE workspace_id = \(ws) AND project_id = \(new.projectID) AND case_key = ANY(\(inventory.keys))
                    """, logger: logger
                ).decode((String, String).self) {
                    caseIDs[key] = id
                }
            }
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
            // The two big tables go in with COPY, the fastest way into PostgreSQL.
            let results = try c.resultRows(workspaceID: ws, runID: new.id, caseIDs: caseIDs)
            try await connection.copyFrom(
                table: "case_results",
                columns: ["workspace_id", "run_id", "ordinal", "case_id", "status", "duration_ms", "attempts", "flaky",
                          "regression", "error_type", "error_message", "error_trace", "labels", "parameters", "attachments"],
                logger: logger
            ) { writer in try await writer.write(results) }
            if !c.stepCase.isEmpty {
                let steps = c.stepRows(workspaceID: ws, runID: new.id)
                try await connection.copyFrom(
                    table: "steps",
                    columns: ["workspace_id", "run_id", "case_ordinal", "ordinal", "parent", "depth", "name", "status",
                              "duration_ms", "attachments"],
                    logger: logger
                ) { writer in try await writer.write(steps) }
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
            let record = RunRecord(
                id: new.id, projectID: new.projectID, externalRunId: run.externalRunId, branch: run.branch,
                commit: run.commit, buildURL: run.buildURL, status: "closed", startedAt: run.startedAt,
                finishedAt: run.finishedAt, env: run.env, totals: totals, baselineRunID: new.baselineRunID,
                regression: summary, seq: new.seq, createdAt: createdAt)
            return Persisted(run: record, caseIDs: caseIDs)
        }
    }

    /// Lists travel as one text per row (arrays of arrays do not UNNEST), split in SQL on U+001F.
    static func joinList(_ items: [String]) -> String {
        items.joined(separator: "\u{1F}")
    }
}

/// The `cases` inventory rows of some of a run's cases, as column arrays for UNNEST.
struct InventoryColumns: Sendable {
    var newIDs = [String](), keys = [String](), names = [String](), suites = [String](), fullNames = [String](),
        files = [String]()

    init(_ run: ValidatedRun, indices: [Int]) {
        let now = Clock.nowMilliseconds()
        for index in indices {
            let item = run.cases[index]
            newIDs.append(ResourceID.make(.testCase, milliseconds: now))
            keys.append(item.key)
            names.append(item.name)
            suites.append(item.suite ?? "")
            fullNames.append(item.fullName ?? "")
            files.append(item.file ?? "")
        }
    }
}

/// The run's results and steps as columns, one per table column.
struct RunColumns: Sendable {
    var keys = [String]()
    var ordinals = [Int32](), statuses = [String](), durations = [Int64](), attempts = [Int32](), flaky = [Bool](),
        regression = [String](), errorTypes = [String](), errorMessages = [String](), errorTraces = [String](),
        labels = [String](), parameters = [String](), attachments = [String]()
    var stepCase = [Int32](), stepOrdinal = [Int32](), stepParent = [Int32](), stepDepth = [Int32](),
        stepName = [String](), stepStatus = [String](), stepDuration = [Int64](), stepAttachments = [String]()

    init(_ run: ValidatedRun, buckets: [RegressionBucket?], encoder: JSONEncoder) throws {
        keys = run.cases.map(\.key)
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

extension RunColumns {
    /// `case_results` rows in COPY text format.
    func resultRows(workspaceID: String, runID: String, caseIDs: [String: String]) throws -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(ordinals.count * 160)
        let prefix = CopyText.field(workspaceID) + "\t" + CopyText.field(runID) + "\t"
        for i in ordinals.indices {
            guard let caseID = caseIDs[keys[i]] else {
                throw StorageError.configuration("case key \(keys[i]) has no inventory row")
            }
            out.writeString(prefix)
            out.writeString(String(ordinals[i]))
            out.writeString("\t")
            out.writeString(CopyText.field(caseID))
            out.writeString("\t\(statuses[i])\t\(durations[i])\t\(attempts[i])\t\(flaky[i] ? "t" : "f")\t")
            out.writeString(CopyText.nullable(regression[i]))
            out.writeString("\t")
            out.writeString(CopyText.nullable(errorTypes[i]))
            out.writeString("\t")
            out.writeString(CopyText.nullable(errorMessages[i]))
            out.writeString("\t")
            out.writeString(CopyText.nullable(errorTraces[i]))
            out.writeString("\t")
            out.writeString(CopyText.field(labels[i]))
            out.writeString("\t")
            out.writeString(CopyText.field(parameters[i]))
            out.writeString("\t")
            out.writeString(CopyText.array(attachments[i]))
            out.writeString("\n")
        }
        return out
    }

    /// `steps` rows in COPY text format.
    func stepRows(workspaceID: String, runID: String) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(stepCase.count * 80)
        let prefix = CopyText.field(workspaceID) + "\t" + CopyText.field(runID) + "\t"
        for i in stepCase.indices {
            out.writeString(prefix)
            out.writeString("\(stepCase[i])\t\(stepOrdinal[i])\t")
            out.writeString(stepParent[i] < 0 ? "\\N" : String(stepParent[i]))
            out.writeString("\t\(stepDepth[i])\t")
            out.writeString(CopyText.field(stepName[i]))
            out.writeString("\t\(stepStatus[i])\t\(stepDuration[i])\t")
            out.writeString(CopyText.array(stepAttachments[i]))
            out.writeString("\n")
        }
        return out
    }
}

/// PostgreSQL's COPY text format: fields separated by tabs, `\N` for NULL, backslash escapes.
enum CopyText {
    static func field(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else { return value }
        var out = ""
        out.reserveCapacity(value.utf8.count + 8)
        for ch in value.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// Empty means NULL (the column arrays use "" for absent optional text).
    static func nullable(_ value: String) -> String { value.isEmpty ? "\\N" : field(value) }

    /// A text[] literal from a U+001F-joined list, every element quoted.
    static func array(_ joined: String) -> String {
        if joined.isEmpty { return "{}" }
        let elements = joined.split(separator: "\u{1F}", omittingEmptySubsequences: false).map { element in
            "\"" + element.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return field("{" + elements.joined(separator: ",") + "}")
    }
}
