import Domains
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Writes one finalized run with COPY: runs, inventory rows, results and steps, in one transaction.
struct RunWriter: Sendable {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    /// Writes the run, its cases, results, steps and attachment links in one transaction: new cases
    /// with one `INSERT … SELECT FROM UNNEST(…)`, results and steps with `COPY`. A handful of
    /// statements whatever the size of the run, and either the whole run is stored or nothing is.
    public func persist(_ new: NewRun) async throws -> PersistedRun {
        let (logger, ws) = (self.logger, workspaceID)
        let run = new.run
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let env = String(decoding: try encoder.encode(run.env), as: UTF8.self)

        let attIDs = new.attachments.map(\.id), attShas = new.attachments.map(\.sha256),
            attSizes = new.attachments.map(\.size), attTypes = new.attachments.map(\.contentType)
        let totals = run.totals
        let summary = new.regression
        let gate: String? = new.gate.status == .none && new.gate.forgiven.isEmpty
            ? nil : String(decoding: try JSONEncoder().encode(new.gate), as: UTF8.self)

        let persisted = try await server.transaction { connection in
            // Where the time goes, for the debug log (as the roll-up's).
            let clock = ContinuousClock()
            let started = clock.now
            let known = new.knownCaseIDs.count
            let caseIDs = try await Self.inventory(
                of: run, digests: new.keyDigests, known: new.knownCaseIDs, projectID: new.projectID, workspaceID: ws,
                on: connection, logger: logger)
            let afterInventory = clock.now
            let rows = try await connection.query(
                """
                INSERT INTO runs (workspace_id, id, project_id, external_run_id, branch, commit_sha, build_url, started_at,
                                  finished_at, env, passed, failed, skipped, broken, flaky, baseline_run_id,
                                  new_failures, fixed, still_failing, seq, gate)
                VALUES (\(ws), \(new.id), \(new.projectID), \(run.externalRunId), \(run.branch), \(run.commit), \(run.buildURL),
                        \(run.startedAt), \(run.finishedAt), \(env)::jsonb, \(totals.passed), \(totals.failed),
                        \(totals.skipped), \(totals.broken), \(totals.flaky), \(new.baselineRunID), \(summary.newFailures),
                        \(summary.fixed), \(summary.stillFailing), \(new.seq), \(gate)::jsonb)
                RETURNING created_at
                """, logger: logger)
            var createdAt = Date()
            for try await date in rows.decode(Date.self) { createdAt = date }
            let afterRun = clock.now
            try await Self.copyResults(
                run.cases, buckets: new.buckets, caseIDs: caseIDs, digests: new.keyDigests, runID: new.id, ordinalBase: 0,
                workspaceID: ws, on: connection, logger: logger)
            let afterResults = clock.now
            if !attIDs.isEmpty {
                try await connection.query(
                    """
                    INSERT INTO run_attachments (workspace_id, run_id, attachment_id, sha256, size, content_type)
                    SELECT \(ws), \(new.id), * FROM UNNEST(\(attIDs)::text[], \(attShas)::text[], \(attSizes)::bigint[], \(attTypes)::text[])
                    """, logger: logger)
            }
            try await Self.recordGateFailure(
                new.gate, runID: new.id, branch: run.branch, projectID: new.projectID, workspaceID: ws, on: connection,
                logger: logger)
            // The post-ingest job commits with the run, so no stored run lacks its roll-up.
            let newFailures = zip(run.cases, new.buckets).lazy.filter { $0.1 == .newFailure }.prefix(10).map(\.0.name)
            try await Self.enqueueRollUpAndAnnounce(
                runID: new.id, projectID: new.projectID,
                event: Self.finalizedEvent(
                    runID: new.id, externalRunId: run.externalRunId, branch: run.branch, commit: run.commit, status: RunRecord.closed,
                    totals: totals, regression: summary, baselineRunID: new.baselineRunID, gate: new.gate,
                    newFailureNames: Array(newFailures)),
                workspaceID: ws, on: connection, logger: logger)
            logger.debug(
                "run written",
                metadata: [
                    "cases": "\(run.cases.count)", "newCases": "\(caseIDs.count - known)",
                    "inventoryMs": elapsedMilliseconds(started, afterInventory), "runRowMs": elapsedMilliseconds(afterInventory, afterRun),
                    "resultsMs": elapsedMilliseconds(afterRun, afterResults), "restMs": elapsedMilliseconds(afterResults, clock.now),
                ])
            let record = RunRecord(
                id: new.id, projectID: new.projectID, externalRunId: run.externalRunId, branch: run.branch,
                commit: run.commit, buildURL: run.buildURL, status: "closed", startedAt: run.startedAt,
                finishedAt: run.finishedAt, env: run.env, totals: totals, baselineRunID: new.baselineRunID,
                regression: summary, seq: new.seq, createdAt: createdAt, gate: new.gate)
            return PersistedRun(run: record, caseIDs: caseIDs)
        }
        // Committed: the run's roll-up (usually on this node, moments later) folds these instead of reading them back.
        await server.freshResults.put(
            runID: new.id, FreshRunResults(run.cases, caseIDs: persisted.caseIDs, digests: new.keyDigests))
        return persisted
    }

    /// Queues the run's roll-up and records `run.finalized` (with its webhook deliveries): one statement, so the
    /// outbox costs a finalize no round trip of its own.
    static func enqueueRollUpAndAnnounce(
        runID: String, projectID: String, event: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger
    ) async throws {
        let job = JobQueue.rollUpPayload(runID: runID, projectID: projectID)
        try await connection.query(
            """
            WITH j AS (
                INSERT INTO jobs (workspace_id, id, kind, payload)
                VALUES (\(ws), \(ResourceID.make(.job)), \(JobQueue.rollupKind), \(job)::jsonb)),
            e AS (
                INSERT INTO events (workspace_id, id, project_id, kind, subject_id, payload)
                VALUES (\(ws), \(ResourceID.make(.event)), \(projectID), 'run.finalized', \(runID), \(event)::jsonb)
                RETURNING workspace_id, id, project_id, kind)
            \(unescaped: WebhookOutbox.fanOut)
            """, logger: logger)
    }

    /// The `run.finalized` event's payload.
    static func finalizedEvent(
        runID: String, externalRunId: String, branch: String, commit: String?, status: String, totals: RunTotals,
        regression: RegressionSummary, baselineRunID: String?, gate: GateVerdict, newFailureNames: [String]
    ) -> String {
        var object: [String: Any] = [
            "runId": runID, "externalRunId": externalRunId, "branch": branch, "status": status,
            "totals": ["passed": totals.passed, "failed": totals.failed, "skipped": totals.skipped, "broken": totals.broken, "flaky": totals.flaky],
            "regression": ["newFailures": regression.newFailures, "fixed": regression.fixed, "stillFailing": regression.stillFailing],
            "gate": gate.status.rawValue, "newFailureNames": newFailureNames,
        ]
        if let commit { object["commit"] = commit }
        if let baselineRunID { object["baselineRunId"] = baselineRunID }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A failed gate's `run.gate_failed` event, in the run's transaction.
    static func recordGateFailure(
        _ gate: GateVerdict, runID: String, branch: String, projectID: String, workspaceID ws: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard gate.status == .failed else { return }
        let failed: [[String: Any]] = gate.failedRules.map { outcome in
            var item: [String: Any] = ["rule": outcome.rule.rawValue, "actual": outcome.actual]
            if let limit = outcome.limit { item["limit"] = limit }
            if let detail = outcome.detail { item["detail"] = detail }
            return item
        }
        let payload = try JSONSerialization.data(
            withJSONObject: ["runId": runID, "branch": branch, "failedRules": failed], options: [.sortedKeys])
        try await RollUp.recordEvents(
            ids: [ResourceID.make(.event)], projectID: projectID, kind: "run.gate_failed", subjects: [runID],
            payloads: [String(decoding: payload, as: UTF8.self)], workspaceID: ws, on: connection, logger: logger)
    }

    /// The run's cases' inventory ids: from `known` (the actor's cache), else looked up; cases new to the
    /// project are inserted. Returns every id the transaction knows, by key digest.
    static func inventory(
        of run: ValidatedRun, digests: [CaseKeyDigest], known: CaseIDMap, projectID: String, workspaceID ws: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> CaseIDMap {
        var caseIDs = known
        if caseIDs.isEmpty {
            try await Self.lookUpCaseIDs(of: run, projectID: projectID, workspaceID: ws, into: &caseIDs, on: connection, logger: logger)
        }
        // Only cases the cache (or the look-up) does not know go through the inventory statements.
        let unknown = caseIDs.isEmpty ? Array(run.cases.indices) : run.cases.indices.filter { !caseIDs.contains(digests[$0]) }
        let inventory = InventoryColumns(run, digests: digests, indices: unknown)
        if !inventory.keys.isEmpty {
            caseIDs.reserveCapacity(caseIDs.count + inventory.keys.count)
            // New cases are usually new to everyone: they go in with COPY under the ids made here. If
            // another node added some of the keys meanwhile (a unique violation), the transaction
            // goes back to the savepoint and inserts what is missing, taking the others' ids.
            try await connection.query("SAVEPOINT inventory", logger: logger)
            do {
                try await connection.countedCopyFrom(
                    table: "cases", columns: ["workspace_id", "id", "project_id", "case_key", "name", "suite", "full_name", "file"],
                    logger: logger
                ) { writer in
                    try await inventory.copy(workspaceID: ws, projectID: projectID, to: writer)
                }
                try await connection.query("RELEASE SAVEPOINT inventory", logger: logger)
                for (digest, id) in zip(inventory.digests, inventory.newULIDs) { caseIDs.set(digest, ulid: id) }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                try await connection.query("ROLLBACK TO SAVEPOINT inventory", logger: logger)
                try await Self.insertMissingCases(inventory, projectID: projectID, workspaceID: ws, into: &caseIDs, on: connection, logger: logger)
            }
        }
        return caseIDs
    }

    /// The cases' results and steps, numbered from `ordinalBase`.
    static func copyResults(
        _ cases: [ValidatedCase], buckets: [RegressionBucket?], caseIDs: CaseIDMap, digests: [CaseKeyDigest], runID: String,
        ordinalBase: Int, workspaceID ws: String, on connection: PostgresConnection, logger: Logger
    ) async throws {
        // The two big tables go in with COPY, the fastest way into PostgreSQL, in chunks so the
        // server parses one while the next is built.
        let copy = CopyRows(workspaceID: ws, runID: runID, ordinalBase: ordinalBase)
        try await connection.countedCopyFrom(
            table: "case_results",
            columns: ["workspace_id", "run_id", "ordinal", "case_id", "status", "duration_ms", "attempts", "flaky",
                      "regression", "error_type", "error_message", "error_trace", "labels", "parameters", "attachments",
                      "fingerprint"],
            logger: logger
        ) { writer in
            try await copy.results(cases, buckets: buckets, caseIDs: caseIDs, digests: digests, to: writer)
        }
        if cases.contains(where: { !$0.steps.isEmpty }) {
            try await connection.countedCopyFrom(
                table: "case_steps", columns: ["workspace_id", "run_id", "case_ordinal", "steps"], logger: logger
            ) { writer in
                try await copy.steps(cases, to: writer)
            }
        }
    }

    /// With a cold cache (a restart, caches dropped when idle): the ids the project already has for the
    /// run's keys, in one read, so that only new cases are inserted. Before that look-up, one probe
    /// says whether the project has any case at all, so a project's first push pays nothing for it.
    static func lookUpCaseIDs(
        of run: ValidatedRun, projectID: String, workspaceID ws: String, into caseIDs: inout CaseIDMap,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard try await connection.projectHasRows(in: "cases", projectID: projectID, workspaceID: ws, logger: logger) else { return }
        var seen = Set<String>()
        let keys = run.cases.map(\.key).filter { seen.insert($0).inserted }
        caseIDs.reserveCapacity(keys.count)
        try await takeExistingCaseIDs(keys: keys, projectID: projectID, workspaceID: ws, into: &caseIDs, on: connection, logger: logger)
    }

    /// The ids the project's inventory holds for `keys`, as one row of arrays.
    static func takeExistingCaseIDs(
        keys: [String], projectID: String, workspaceID ws: String, into caseIDs: inout CaseIDMap,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        for try await (foundKeys, ids) in try await connection.query(
            """
            SELECT COALESCE(array_agg(case_key), '{}'), COALESCE(array_agg(id), '{}') FROM cases
            WHERE workspace_id = \(ws) AND project_id = \(projectID) AND case_key = ANY(\(keys)::text[])
            """, logger: logger
        ).decode(([String], [String]).self) {
            guard foundKeys.count == ids.count else { continue }
            for (key, id) in zip(foundKeys, ids) { caseIDs.set(CaseKeyDigest(key), id: id) }
        }
    }

    /// Inserts the cases of `inventory` no one has added yet and takes the ids of those someone has.
    static func insertMissingCases(
        _ inventory: InventoryColumns, projectID: String, workspaceID ws: String, into caseIDs: inout CaseIDMap,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        for try await (key, id) in try await connection.query(
            """
            INSERT INTO cases (workspace_id, id, project_id, case_key, name, suite, full_name, file)
            SELECT \(ws), u.id, \(projectID), u.key, u.name, NULLIF(u.suite, ''), NULLIF(u.full_name, ''), NULLIF(u.file, '')
            FROM UNNEST(\(inventory.newIDs)::text[], \(inventory.keys)::text[], \(inventory.names)::text[], \(inventory.suites)::text[], \(inventory.fullNames)::text[], \(inventory.files)::text[])
                 AS u(id, key, name, suite, full_name, file)
            ON CONFLICT (workspace_id, project_id, case_key) DO NOTHING
            RETURNING case_key, id
            """, logger: logger
        ).decode((String, String).self) {
            caseIDs.set(CaseKeyDigest(key), id: id)
        }
        let taken = zip(inventory.keys, inventory.digests).filter { !caseIDs.contains($0.1) }.map(\.0)
        guard !taken.isEmpty else { return }
        try await takeExistingCaseIDs(keys: taken, projectID: projectID, workspaceID: ws, into: &caseIDs, on: connection, logger: logger)
    }
}


/// The `cases` inventory rows of some of a run's cases (each key once), as columns: for COPY, or
/// arrays for UNNEST.
struct InventoryColumns: Sendable {
    var newIDs = [String](), keys = [String](), names = [String](), suites = [String](), fullNames = [String](),
        files = [String]()
    /// The new ids' ULIDs and the keys' digests, for the caller's map.
    var newULIDs = [ULID](), digests = [CaseKeyDigest]()

    init(_ run: ValidatedRun, digests runDigests: [CaseKeyDigest], indices: [Int]) {
        var seen = Set<String>()
        // A key twice in one run is one case (its first occurrence describes it).
        let firsts = indices.filter { seen.insert(run.cases[$0].key).inserted }
        // In key order (bytes, as PostgreSQL's C collation compares), with ids that grow in that order: the
        // rows then reach the primary key and the key index in their own order, each insert beside the last
        // instead of anywhere in the index (psql, 100,000 new cases COPYed with every index of `cases`:
        // 1.14–1.26 s against 1.97–2.21 s in the run's order).
        let order = ByteOrder.sortedIndices(firsts.map { run.cases[$0].key }).map { firsts[$0] }
        var ids = ULID.ascending(count: order.count, milliseconds: Clock.nowMilliseconds())
        for index in order {
            let item = run.cases[index]
            let ulid = ids.next()!
            newULIDs.append(ulid)
            digests.append(runDigests[index])
            newIDs.append(ResourceID.string(.testCase, ulid))
            keys.append(item.key)
            names.append(item.name)
            suites.append(item.suite ?? "")
            fullNames.append(item.fullName ?? "")
            files.append(item.file ?? "")
        }
    }

    /// The rows in COPY text format, in chunks.
    func copy(workspaceID: String, projectID: String, to writer: PostgresCopyFromWriter) async throws {
        let prefix = CopyText.field(workspaceID) + "\t"
        let project = "\t" + CopyText.field(projectID) + "\t"
        var out = CopyRows.chunk()
        for index in keys.indices {
            out.writeString(prefix)
            out.writeString(CopyText.field(newIDs[index]))
            out.writeString(project)
            out.writeString(CopyText.field(keys[index]))
            out.writeString("\t")
            out.writeString(CopyText.field(names[index]))
            out.writeString("\t")
            out.writeString(CopyText.nullable(suites[index]))
            out.writeString("\t")
            out.writeString(CopyText.nullable(fullNames[index]))
            out.writeString("\t")
            out.writeString(CopyText.nullable(files[index]))
            out.writeString("\n")
            try await CopyRows.flush(&out, to: writer, ifAtLeast: CopyRows.chunkBytes)
        }
        try await CopyRows.flush(&out, to: writer, ifAtLeast: 1)
    }
}

/// `case_results` and `steps` rows in COPY text format, written straight from the validated cases
/// in chunks of about `chunkBytes`.
struct CopyRows: Sendable {
    static let chunkBytes = 128 * 1024
    let prefix: String
    /// The first case's ordinal (a shard's cases follow the earlier shards').
    let ordinalBase: Int

    init(workspaceID: String, runID: String, ordinalBase: Int = 0) {
        prefix = CopyText.field(workspaceID) + "\t" + CopyText.field(runID) + "\t"
        self.ordinalBase = ordinalBase
    }

    func results(
        _ cases: [ValidatedCase], buckets: [RegressionBucket?], caseIDs: CaseIDMap, digests: [CaseKeyDigest],
        to writer: PostgresCopyFromWriter
    ) async throws {
        var out = Self.chunk()
        for (index, item) in cases.enumerated() {
            guard let caseID = caseIDs[digests[index]] else {
                throw StorageError.configuration("case key \(item.key) has no inventory row")
            }
            out.writeString(prefix)
            out.writeString(String(ordinalBase + index))
            out.writeString("\t")
            switch caseID {
            case .ulid(let ulid):
                // `case_` and 26 base-32 characters: nothing to escape, written without making a string.
                out.writeString("case_")
                ulid.withLowercasedBytes { out.writeBytes($0) }
            case .text(let text):
                out.writeString(CopyText.field(text))
            }
            out.writeString("\t")
            out.writeString(item.status.rawValue)
            out.writeString("\t")
            out.writeString(String(item.durationMs))
            out.writeString("\t")
            out.writeString(String(item.attempts))
            out.writeString(item.flaky ? "\tt\t" : "\tf\t")
            out.writeString(buckets[index]?.rawValue ?? "\\N")
            out.writeString("\t")
            out.writeString(CopyText.nullable(item.error?.type))
            out.writeString("\t")
            out.writeString(CopyText.nullable(item.error?.message))
            out.writeString("\t")
            out.writeString(CopyText.nullable(item.error?.trace))
            out.writeString("\t")
            out.writeString(CopyText.field(JSONText.object(item.labels)))
            out.writeString("\t")
            out.writeString(CopyText.field(JSONText.object(item.parameters)))
            out.writeString("\t")
            out.writeString(CopyText.array(item.attachments))
            out.writeString("\t")
            if item.status.isFailing {
                out.writeString(FailureFingerprint.of(type: item.error?.type, message: item.error?.message, trace: item.error?.trace))
            } else {
                out.writeString("\\N")
            }
            out.writeString("\n")
            try await Self.flush(&out, to: writer, ifAtLeast: Self.chunkBytes)
        }
        try await Self.flush(&out, to: writer, ifAtLeast: 1)
    }

    /// One `case_steps` row per case with steps: its steps as JSON (`StepsText`).
    func steps(_ cases: [ValidatedCase], to writer: PostgresCopyFromWriter) async throws {
        var out = Self.chunk()
        for (index, item) in cases.enumerated() where !item.steps.isEmpty {
            out.writeString(prefix)
            out.writeString(String(ordinalBase + index))
            out.writeString("\t")
            out.writeString(CopyText.field(StepsText.encode(item.steps)))
            out.writeString("\n")
            try await Self.flush(&out, to: writer, ifAtLeast: Self.chunkBytes)
        }
        try await Self.flush(&out, to: writer, ifAtLeast: 1)
    }

    static func chunk() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(chunkBytes + 8192)
        return buffer
    }

    /// Sends the buffer once it holds `bytes` or more, and starts a new one.
    static func flush(_ out: inout ByteBuffer, to writer: PostgresCopyFromWriter, ifAtLeast bytes: Int) async throws {
        guard out.readableBytes >= bytes else { return }
        try await writer.write(out)
        out = chunk()
    }
}

/// A case's steps as stored in `case_steps`: a JSON array with one array per step,
/// `[ordinal, parent, depth, name, status, durationMs, [attachment ids]]`, in ordinal order.
enum StepsText {
    static func encode(_ steps: [FlatStep]) -> String {
        var out = "["
        for (index, step) in steps.enumerated() {
            if index > 0 { out += "," }
            out += "[\(step.ordinal),"
            out += step.parent.map { String($0) } ?? "null"
            out += ",\(step.depth),"
            JSONText.string(step.name, into: &out)
            out += ",\"\(step.status.rawValue)\",\(step.durationMs),["
            for (n, id) in step.attachments.enumerated() {
                if n > 0 { out += "," }
                JSONText.string(id, into: &out)
            }
            out += "]]"
        }
        return out + "]"
    }

    /// The steps of `text`; nil when it is not what `encode` writes.
    static func decode(_ text: String) -> [FlatStep]? {
        guard let items = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[Any]] else { return nil }
        var steps: [FlatStep] = []
        steps.reserveCapacity(items.count)
        for item in items {
            guard item.count == 7, let ordinal = (item[0] as? NSNumber)?.intValue, let depth = (item[2] as? NSNumber)?.intValue,
                let name = item[3] as? String, let status = item[4] as? String, let duration = (item[5] as? NSNumber)?.int64Value,
                let attachments = item[6] as? [String]
            else { return nil }
            steps.append(
                FlatStep(
                    ordinal: ordinal, parent: (item[1] as? NSNumber)?.intValue, depth: depth, name: name,
                    status: CaseStatus(rawValue: status) ?? .broken, durationMs: duration, attachments: attachments))
        }
        return steps
    }
}

/// A JSON object of strings, for jsonb columns (which normalize key order themselves).
enum JSONText {
    static func object(_ map: [String: String]) -> String {
        if map.isEmpty { return "{}" }
        var out = "{"
        var first = true
        for (key, value) in map {
            if !first { out += "," }
            first = false
            string(key, into: &out)
            out += ":"
            string(value, into: &out)
        }
        return out + "}"
    }

    static func string(_ value: String, into out: inout String) {
        out += "\""
        guard value.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else {
            out += value
            out += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
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

    /// Nil, or empty, is NULL.
    static func nullable(_ value: String?) -> String {
        guard let value, !value.isEmpty else { return "\\N" }
        return field(value)
    }

    /// A text[] literal, every element quoted.
    static func array(_ items: [String]) -> String {
        if items.isEmpty { return "{}" }
        let elements = items.map { element in
            "\"" + element.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return field("{" + elements.joined(separator: ",") + "}")
    }
}
