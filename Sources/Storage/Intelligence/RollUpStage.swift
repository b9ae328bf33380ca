import Domains
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The roll-up's per-case writes (each case's window on a branch, its stats) reach PostgreSQL through two
/// staging tables filled with COPY, then one set-wise statement each that applies the stage.
///
/// Why not `UPDATE … FROM UNNEST($1, …, $19)`, as before (issue 13): with ten to nineteen bound arrays of
/// 10,000 elements, PostgreSQL spent 26–41 ms planning the statement (the arrays are constants to the
/// planner) and 21–41 ms unpacking them, more than the row updates; COPY text of the same rows is parsed
/// in 24–29 ms and the update from the stage planned in under a millisecond (psql, a 1M-row `case_stats`).
///
/// The tables are temporary (no WAL, private to the connection) and created once per pooled connection;
/// `ON COMMIT DELETE ROWS` empties them when a transaction that used them ends, and `clear` before each
/// filling lets a batch of several projects or branches use them again in one transaction (a
/// `DELETE … RETURNING` consuming the rows instead cost 37 ms per 10,000). A transaction that rolls back
/// takes its rows (and a table it created) with it.
enum RollUpStage {
    static let windowsTable = "kaizen_rollup_windows"
    static let statsTable = "kaizen_rollup_stats"

    /// Creates the staging tables on this connection if an earlier roll-up on it has not.
    static func prepare(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            CREATE TEMP TABLE IF NOT EXISTS kaizen_rollup_windows (
                case_id text NOT NULL, existing boolean NOT NULL, outcomes text NOT NULL, evidence text NOT NULL,
                results integer NOT NULL, flips integer NOT NULL, retry_passes integer NOT NULL, score float8 NOT NULL,
                is_flaky boolean NOT NULL, flip_n integer
            ) ON COMMIT DELETE ROWS
            """, logger: logger)
        try await connection.query(
            """
            CREATE TEMP TABLE IF NOT EXISTS kaizen_rollup_stats (
                case_id text NOT NULL, first_n integer NOT NULL, last_n integer NOT NULL, failed_n integer,
                last_status text NOT NULL, runs integer NOT NULL, passed integer NOT NULL, failed integer NOT NULL,
                broken integer NOT NULL, skipped integer NOT NULL, flaky integer NOT NULL, duration bigint NOT NULL,
                lift_flaky boolean, lift_score float8, lift_branch text, became boolean NOT NULL
            ) ON COMMIT DELETE ROWS
            """, logger: logger)
    }

    /// Empties a staging table before it is filled (a no-op on a fresh one).
    static func clear(_ table: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("TRUNCATE \(unescaped: table)", logger: logger)
    }

    /// The batch's runs, numbered from 1 as the stage's `*_n` columns name them: a row carries the number
    /// of a run (two bytes of text) instead of its id and timestamps, turned back into them by array subscript.
    struct RunNumbers {
        let ids: [String]
        let createdAt: [Date]
        private let byID: [String: Int]
        private let byTime: [Date: Int]

        init(_ runs: [RolledRun]) {
            ids = runs.map(\.id)
            createdAt = runs.map(\.createdAt)
            byID = Dictionary(runs.enumerated().map { ($1.id, $0 + 1) }, uniquingKeysWith: { first, _ in first })
            // Runs created at the same instant are interchangeable where only the time is wanted.
            byTime = Dictionary(runs.enumerated().map { ($1.createdAt, $0 + 1) }, uniquingKeysWith: { first, _ in first })
        }

        // A batch of one run (most roll-ups) needs no hashing: every row asks about that run.
        func number(of runID: String) -> Int { ids.count == 1 ? (ids[0] == runID ? 1 : 0) : byID[runID] ?? 0 }
        func number(at time: Date) -> Int { ids.count == 1 ? (createdAt[0] == time ? 1 : 0) : byTime[time] ?? 0 }
    }

    /// A folded window to stage, and whether its row exists.
    struct WindowRow {
        let caseID: String
        let existing: Bool
        let history: FlakyHistory
        let verdict: FlakyVerdict
        let lastFlipAt: Date?
    }

    /// Appends the windows to the stage.
    static func copyWindows(_ rows: [WindowRow], runs: RunNumbers, on connection: PostgresConnection, logger: Logger) async throws {
        guard !rows.isEmpty else { return }
        try await connection.countedCopyFrom(
            table: windowsTable,
            columns: ["case_id", "existing", "outcomes", "evidence", "results", "flips", "retry_passes", "score", "is_flaky", "flip_n"],
            logger: logger
        ) { writer in
            var out = CopyRows.chunk()
            for row in rows {
                let (history, verdict) = (row.history, row.verdict)
                out.writeString(CopyText.field(row.caseID))
                out.writeStaticString(row.existing ? "\tt\t" : "\tf\t")
                out.writeString(CopyText.field(history.outcomes))
                out.writeStaticString("\t")
                // Run ids hold no commas: the evidence travels comma-joined, split in SQL.
                for (index, run) in history.evidence.enumerated() {
                    if index > 0 { out.writeStaticString(",") }
                    out.writeString(CopyText.field(run))
                }
                out.writeCopyInt(verdict.results)
                out.writeCopyInt(verdict.flips)
                out.writeCopyInt(verdict.retryPasses)
                out.writeString("\t\(verdict.score)")
                out.writeStaticString(verdict.isFlaky ? "\tt" : "\tf")
                if let flip = row.lastFlipAt { out.writeCopyInt(runs.number(at: flip)) } else { out.writeStaticString("\t\\N") }
                out.writeStaticString("\n")
                try await CopyRows.flush(&out, to: writer, ifAtLeast: CopyRows.chunkBytes)
            }
            try await CopyRows.flush(&out, to: writer, ifAtLeast: 1)
        }
    }

    /// Writes the staged windows of one branch into `case_windows`: an update of the existing, an insert of
    /// the new.
    static func applyWindows(
        branch: String, projectID: String, runs: RunNumbers, workspaceID ws: String, on connection: PostgresConnection, logger: Logger
    ) async throws {
        // Plain UPDATE … FROM and INSERT, not INSERT … ON CONFLICT: the roll-up knows which windows exist
        // (it just read them under the project's lock), and the speculative insert cost ~40 % more per row.
        try await connection.query(
            """
            WITH t AS MATERIALIZED (
                SELECT d.*, CASE WHEN d.evidence = '' THEN '{}'::text[] ELSE string_to_array(d.evidence, ',') END AS runs,
                       (\(runs.createdAt)::timestamptz[])[d.flip_n] AS flip_at
                FROM kaizen_rollup_windows d),
            upd AS (
                UPDATE case_windows w SET outcomes = t.outcomes, evidence = t.runs, results = t.results, flips = t.flips,
                       retry_passes = t.retry_passes, score = t.score, is_flaky = t.is_flaky,
                       last_flip_at = COALESCE(t.flip_at, w.last_flip_at), updated_at = now()
                FROM t WHERE t.existing AND w.workspace_id = \(ws) AND w.case_id = t.case_id AND w.branch = \(branch))
            INSERT INTO case_windows (workspace_id, case_id, branch, project_id, outcomes, evidence, results, flips,
                                      retry_passes, score, is_flaky, last_flip_at, updated_at)
            SELECT \(ws), t.case_id, \(branch), \(projectID), t.outcomes, t.runs, t.results, t.flips, t.retry_passes, t.score,
                   t.is_flaky, t.flip_at, now()
            FROM t WHERE NOT t.existing
            """, logger: logger)
    }

    /// Appends the cases' stats deltas (and, for the cases in `verdicts`, the verdict the replay ended with)
    /// to the stage.
    static func copyStats(
        _ order: ArraySlice<String>, deltas: [String: CaseStatsDelta], verdicts: [String: CaseVerdictChange], runs: RunNumbers,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard !order.isEmpty else { return }
        try await connection.countedCopyFrom(
            table: statsTable,
            columns: ["case_id", "first_n", "last_n", "failed_n", "last_status", "runs", "passed", "failed", "broken",
                      "skipped", "flaky", "duration", "lift_flaky", "lift_score", "lift_branch", "became"],
            logger: logger
        ) { writer in
            var out = CopyRows.chunk()
            for caseID in order {
                guard let delta = deltas[caseID] else { continue }
                out.writeString(CopyText.field(caseID))
                out.writeCopyInt(runs.number(at: delta.firstSeenAt))
                out.writeCopyInt(runs.number(of: delta.lastRunID))
                if let failed = delta.lastFailedAt { out.writeCopyInt(runs.number(at: failed)) } else { out.writeStaticString("\t\\N") }
                out.writeStaticString("\t")
                out.writeString(delta.lastStatus.rawValue)
                out.writeCopyInt(delta.runs)
                out.writeCopyInt(delta.passed)
                out.writeCopyInt(delta.failed)
                out.writeCopyInt(delta.broken)
                out.writeCopyInt(delta.skipped)
                out.writeCopyInt(delta.flaky)
                out.writeCopyInt(delta.durationMS)
                if let change = verdicts[caseID] {
                    out.writeStaticString(change.verdict.isFlaky ? "\tt\t" : "\tf\t")
                    out.writeString("\(change.verdict.score)\t")
                    out.writeString(CopyText.field(change.verdict.branch))
                    out.writeStaticString(change.becameFlaky ? "\tt\n" : "\tf\n")
                } else {
                    out.writeStaticString("\t\\N\t\\N\t\\N\tf\n")
                }
                try await CopyRows.flush(&out, to: writer, ifAtLeast: CopyRows.chunkBytes)
            }
            try await CopyRows.flush(&out, to: writer, ifAtLeast: 1)
        }
    }

    /// Folds the staged deltas into `case_stats` — an update of the cases the project has stats for, an insert
    /// of the others (all of them, when `known` says the project has none).
    /// `flaky_since` restarts (this transaction's now()) for a case that became flaky during the batch, and
    /// is cleared for one that is not flaky.
    static func applyStats(
        known: Bool, staged: Int, projectID: String, runs: RunNumbers, workspaceID ws: String, on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        // The stage's run numbers become the runs' ids and times by subscript, not a join: a join with the
        // few runs made the planner expect one row and nest loops over ten thousand (O(n²) in an anti-join).
        if known {
            var updated = 0
            for try await count in try await connection.query(
                """
                WITH t AS (SELECT d.*,
                        (\(runs.createdAt)::timestamptz[])[d.first_n] AS first_seen, (\(runs.createdAt)::timestamptz[])[d.last_n] AS last_seen,
                        (\(runs.ids)::text[])[d.last_n] AS last_run, (\(runs.createdAt)::timestamptz[])[d.failed_n] AS last_failed
                        FROM kaizen_rollup_stats d),
                upd AS (
                    UPDATE case_stats s SET
                        first_seen_at = LEAST(s.first_seen_at, t.first_seen),
                        last_run_id = CASE WHEN t.last_seen >= s.last_seen_at THEN t.last_run ELSE s.last_run_id END,
                        last_status = CASE WHEN t.last_seen >= s.last_seen_at THEN t.last_status ELSE s.last_status END,
                        last_seen_at = GREATEST(s.last_seen_at, t.last_seen),
                        last_failed_at = GREATEST(s.last_failed_at, t.last_failed),
                        runs = s.runs + t.runs, passed = s.passed + t.passed, failed = s.failed + t.failed,
                        broken = s.broken + t.broken, skipped = s.skipped + t.skipped, flaky = s.flaky + t.flaky,
                        total_duration_ms = s.total_duration_ms + t.duration,
                        is_flaky = COALESCE(t.lift_flaky, s.is_flaky),
                        flaky_score = CASE WHEN t.lift_flaky IS NULL THEN s.flaky_score ELSE t.lift_score END,
                        flaky_branch = CASE WHEN t.lift_flaky IS NULL THEN s.flaky_branch ELSE t.lift_branch END,
                        flaky_since = CASE WHEN t.lift_flaky IS NULL THEN s.flaky_since WHEN NOT t.lift_flaky THEN NULL
                                           WHEN t.became THEN now() ELSE s.flaky_since END
                    FROM t WHERE s.workspace_id = \(ws) AND s.case_id = t.case_id
                    RETURNING 1)
                SELECT count(*) FROM upd
                """, logger: logger
            ).decode(Int.self) {
                updated = count
            }
            // Usually every case had stats; the insert (and its anti-join, 27 ms per 10,000) only when some are new.
            guard updated < staged else { return }
        }
        // Without `known` the condition is true before the statement runs (PostgreSQL plans it with its bound
        // values and folds `NOT false OR …`), so a project's first roll-up pays for no anti-join.
        try await connection.query(
            """
            WITH t AS (SELECT d.*,
                    (\(runs.createdAt)::timestamptz[])[d.first_n] AS first_seen, (\(runs.createdAt)::timestamptz[])[d.last_n] AS last_seen,
                    (\(runs.ids)::text[])[d.last_n] AS last_run, (\(runs.createdAt)::timestamptz[])[d.failed_n] AS last_failed
                    FROM kaizen_rollup_stats d)
            INSERT INTO case_stats (workspace_id, case_id, project_id, first_seen_at, last_seen_at, last_run_id, last_status,
                                    last_failed_at, runs, passed, failed, broken, skipped, flaky, total_duration_ms,
                                    is_flaky, flaky_score, flaky_branch, flaky_since)
            SELECT \(ws), t.case_id, \(projectID), t.first_seen, t.last_seen, t.last_run, t.last_status, t.last_failed,
                   t.runs, t.passed, t.failed, t.broken, t.skipped, t.flaky, t.duration,
                   COALESCE(t.lift_flaky, false), COALESCE(t.lift_score, 0), t.lift_branch, CASE WHEN t.lift_flaky THEN now() END
            FROM t WHERE NOT \(known) OR NOT EXISTS (SELECT 1 FROM case_stats s WHERE s.workspace_id = \(ws) AND s.case_id = t.case_id)
            """, logger: logger)
    }
}

extension ByteBuffer {
    /// A tab, then `value` in decimal: a COPY text field without the allocations of string interpolation
    /// (the stage's rows are mostly small integers).
    mutating func writeCopyInt<T: BinaryInteger>(_ value: T) {
        writeInteger(UInt8(ascii: "\t"))
        var magnitude = value.magnitude
        if value < 0 { writeInteger(UInt8(ascii: "-")) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { bytes in
            repeat {
                bytes[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            writeBytes(UnsafeRawBufferPointer(rebasing: bytes[(20 - count)...]))
        }
    }
}
