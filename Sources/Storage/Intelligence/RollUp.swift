import Domains
import Foundation
import Logging
import PostgresNIO

/// The run a roll-up is folding in.
struct RollUpSubject: Sendable {
    let runID: String
    let projectID: String
    let branch: String
    let createdAt: Date
    let executed: Int
    let failing: Int
    let seq: Int64
}

/// One branch's window of a case and its verdict.
struct FlakyWindowVerdict {
    let branch: String
    let verdict: FlakyVerdict
    let evidence: [String]

    /// The order `liftVerdicts` picks a case's verdict by (`BranchVerdict.outranks`).
    func outranks(_ other: FlakyWindowVerdict) -> Bool { ranking.outranks(other.ranking) }

    var ranking: BranchVerdict { BranchVerdict(branch: branch, score: verdict.score, isFlaky: verdict.isFlaky) }
}

/// Why a roll-up did not happen now.
enum RollUpError: Error, CustomStringConvertible {
    /// An earlier run of the project is not rolled up yet; windows must be extended in finalize order.
    case waitingForEarlierRun(String)

    public var description: String {
        switch self {
        case .waitingForEarlierRun(let id): "waiting for the roll-up of the earlier run \(id)"
        }
    }
}

/// Knobs of the roll-up that tests turn to reach its paths with small data.
public enum RollUpTuning {
    /// How many cases' windows (and then stats) a roll-up reads, folds and writes at once (its memory is
    /// bounded by this, not by the run).
    @TaskLocal public static var windowSliceCases = 20_000
    /// Whether a project with windows on one branch skips looking up other branches' verdicts (`hasOtherBranch`);
    /// off, every roll-up looks them up, as a project with several branches does.
    @TaskLocal public static var soleBranchShortcut = true
    /// How many windows beyond twice the cases asked for a read of one range of ids may meet before it reads the
    /// cases one by one instead (`readWindows`).
    @TaskLocal public static var windowRangeSlack = 1_000
    /// Whether a roll-up folds the results its finalize handed over on this node (`FreshResults`); off, it
    /// reads every run's results back, as after a restart.
    @TaskLocal public static var foldsFreshResults = true
}

/// Folds finalized runs into the roll-ups: one transaction per job, or per batch of a project's queued runs.
struct RollUp: Sendable {
    let server: PhysicalServer
    let workspaceID: String
    let logger: Logger

    init(server: PhysicalServer, workspaceID: String, logger: Logger) {
        self.server = server
        self.workspaceID = workspaceID
        self.logger = logger
    }

    /// Folds one run into the roll-ups; see `rollUp(runIDs:inOrder:)`.
    func rollUp(runID: String, inOrder: Bool) async throws -> Bool {
        try await rollUp(runIDs: [runID], inOrder: inOrder)
    }

    /// Folds finalized runs into the roll-ups (case stats, daily project series, failure clusters,
    /// flakiness windows, defect attribution), exactly once: each run is marked rolled up in the same
    /// transaction, so a retried or duplicated job finds nothing left to do. Returns false then.
    ///
    /// Several runs of a project fold in one transaction with exactly the result of folding them one by
    /// one, in finalize order: the windows and case verdicts are replayed run by run in Swift (so every
    /// `flaky.detected` names the run that caused it), and each case's window and stats are written once
    /// per batch. Under a sustained push the worker hands over every queued run of a project, so the
    /// writes per run fall as the queue grows — how roll-ups keep pace.
    ///
    /// Roll-ups of one project are serialized by a transaction-scoped advisory lock, and go in finalize
    /// order: while an earlier run of the project waits with a live job (it failed and will be
    /// retried), this throws `RollUpError.waitingForEarlierRun`. A dead job is not waited for, and
    /// with `inOrder` false (a job's last attempt) nothing is.
    func rollUp(runIDs: [String], inOrder: Bool) async throws -> Bool {
        let (logger, ws, fresh) = (self.logger, workspaceID, server.freshResults)
        return try await server.transaction { connection in
            var subjects: [RollUpSubject] = []
            for try await (id, project, branch, created, executed, failing, seq) in try await connection.query(
                """
                UPDATE runs SET rolled_up_at = now() WHERE workspace_id = \(ws) AND id = ANY(\(runIDs)::text[]) AND rolled_up_at IS NULL
                RETURNING id, project_id, branch, created_at, passed + failed + broken, failed + broken, seq
                """,
                logger: logger
            ).decode((String, String, String, Date, Int, Int, Int64).self) {
                subjects.append(
                    RollUpSubject(
                        runID: id, projectID: project, branch: branch, createdAt: created, executed: executed, failing: failing,
                        seq: seq))
            }
            guard !subjects.isEmpty else { return false }
            // Every statement here touches a few runs' rows: compiling them (JIT, which the planner's cost
            // estimates can trigger) would cost more than it saves, measured at 0.4 s of 0.65 s.
            try await connection.query("SET LOCAL jit = off", logger: logger)
            try await RollUpStage.prepare(on: connection, logger: logger)
            let byProject = Dictionary(grouping: subjects, by: \.projectID)
            for projectID in byProject.keys.sorted() {
                let runs = byProject[projectID]!.sorted { $0.seq < $1.seq }
                try await Self.foldProject(
                    runs, projectID: projectID, inOrder: inOrder, fresh: fresh, workspaceID: ws, on: connection, logger: logger)
                // "Roll-up done" for live streams: the run's history, flakiness and analytics now include it.
                try await Self.recordEvents(
                    ids: runs.map { _ in ResourceID.make(.event) }, projectID: projectID, kind: "run.rolled_up", subjects: runs.map(\.runID),
                    payloads: try runs.map {
                        String(
                            decoding: try JSONSerialization.data(withJSONObject: ["runId": $0.runID, "branch": $0.branch], options: [.sortedKeys]),
                            as: UTF8.self)
                    }, workspaceID: ws,
                    on: connection, logger: logger)
            }
            return true
        }
    }

    /// Folds runs of one project, in finalize order, inside the caller's transaction.
    static func foldProject(
        _ subjects: [RollUpSubject], projectID: String, inOrder: Bool, fresh: FreshResults, workspaceID ws: String, on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        try await connection.query(
            "SELECT pg_advisory_xact_lock(hashtextextended(\(ws + "/" + projectID), 7))", logger: logger)
        if inOrder, let last = subjects.last {
            // An earlier run still waiting is one this batch does not hold (its own runs are marked already).
            for try await earlier in try await connection.query(
                """
                SELECT r.id FROM runs r WHERE r.workspace_id = \(ws) AND r.project_id = \(projectID)
                  AND r.seq < \(last.seq) AND r.rolled_up_at IS NULL
                  AND EXISTS (SELECT 1 FROM jobs j WHERE j.workspace_id = r.workspace_id
                              AND j.state IN ('queued', 'running') AND j.payload->>'runId' = r.id)
                ORDER BY r.seq LIMIT 1
                """, logger: logger
            ).decode(String.self) {
                throw RollUpError.waitingForEarlierRun(earlier)
            }
        }
        // Where the time goes, for the debug log.
        let clock = ContinuousClock()
        var steps = StepTimings()
        let started = clock.now
        let (runs, failing) = try await readResults(subjects, fresh: fresh, workspaceID: ws, on: connection, logger: logger)
        let afterRead = clock.now
        // Flakiness first: the case stats take the verdicts of the cases whose windows moved.
        let policy = try await PostgresIntelligenceRepository.flakyPolicy(projectID: projectID, workspaceID: ws, on: connection, logger: logger)
        var replay = CaseVerdictReplay()
        var segment: [RolledRun] = []
        // Runs judged infrastructure failures say nothing about flakiness; the others fold branch by branch.
        let judged = zip(subjects, runs).filter { !policy.isInfrastructureFailure(executed: $0.0.executed, failed: $0.0.failing) }.map(\.1)
        let batchBranches = Set(subjects.map(\.branch))
        for (index, run) in judged.enumerated() {
            segment.append(run)
            if index + 1 == judged.count || judged[index + 1].branch != run.branch {
                var soleBranch = RollUpTuning.soleBranchShortcut && batchBranches.count == 1
                if soleBranch {
                    soleBranch = try await !hasOtherBranch(than: run.branch, projectID: projectID, workspaceID: ws, on: connection, logger: logger)
                }
                try await foldWindows(
                    segment, projectID: projectID, policy: policy, soleBranch: soleBranch, into: &replay, steps: &steps, workspaceID: ws,
                    on: connection, logger: logger)
                segment = []
            }
        }
        let afterWindows = clock.now
        try await writeCaseStats(
            runs, projectID: projectID, verdicts: replay.changes, steps: &steps, workspaceID: ws, on: connection, logger: logger)
        let afterStats = clock.now
        steps.start()
        let detected = Self.detectedByRun(replay.detected, runs: runs)
        for (run, cases) in detected where !cases.isEmpty {
            var windows: [String: FlakyWindowVerdict] = [:]
            for move in cases { windows[move.caseID] = FlakyWindowVerdict(branch: run.branch, verdict: move.verdict, evidence: move.evidence) }
            try await recordFlakyDetected(
                cases.map(\.caseID), windows: windows, detail: ["runId": run.id], projectID: projectID, workspaceID: ws,
                on: connection, logger: logger)
        }
        steps.lap("flaky.events")
        try await applyAutoQuarantine(judged, detected: detected, projectID: projectID, workspaceID: ws, on: connection, logger: logger)
        steps.lap("quarantine")
        try await recordSameCommitEvidence(runs, projectID: projectID, workspaceID: ws, on: connection, logger: logger)
        steps.lap("same-commit")
        try await foldBatchTotals(runs, failing: failing, projectID: projectID, steps: &steps, workspaceID: ws, on: connection, logger: logger)
        let done = clock.now
        logger.debug(
            "roll-up folded",
            metadata: [
                "project": "\(projectID)", "runs": "\(subjects.count)", "results": "\(runs.reduce(0) { $0 + $1.results.count })",
                "readMs": elapsedMilliseconds(started, afterRead), "windowsMs": elapsedMilliseconds(afterRead, afterWindows),
                "statsMs": elapsedMilliseconds(afterWindows, afterStats), "totalsMs": elapsedMilliseconds(afterStats, done),
                "steps": steps.summary,
            ])
    }

    /// Auto-quarantine over the batch's judged runs, in finalize order (`AutoQuarantineReplay`): cases that
    /// became flaky are quarantined when the project asks for it; automatic quarantines count clean passes
    /// and are released after the policy's number (also once auto-quarantine is turned off). Manual
    /// quarantines are left alone. Two small reads when the project uses none of it.
    static func applyAutoQuarantine(
        _ runs: [RolledRun], detected: [(run: RolledRun, cases: [WindowMove])], projectID: String, workspaceID ws: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        var auto = false
        var releaseAfter = QuarantinePolicy.default.releaseAfterCleanPasses
        var anyAutomatic = false
        for try await (enabled, after, existing) in try await connection.query(
            """
            SELECT COALESCE(p.auto, false), COALESCE(p.release_after, \(releaseAfter)),
                   EXISTS (SELECT 1 FROM case_quarantine q WHERE q.workspace_id = \(ws) AND q.project_id = \(projectID) AND q.automatic)
            FROM (SELECT 1) one LEFT JOIN project_quarantine_policy p ON p.workspace_id = \(ws) AND p.project_id = \(projectID)
            """, logger: logger
        ).decode((Bool, Int, Bool).self) {
            (auto, releaseAfter, anyAutomatic) = (enabled, after, existing)
        }
        guard auto || anyAutomatic else { return }
        var automatic: [String: Int] = [:]
        var manual: Set<String> = []
        for try await (caseID, isAutomatic, passes) in try await connection.query(
            """
            SELECT case_id, automatic, clean_passes FROM case_quarantine
            WHERE workspace_id = \(ws) AND project_id = \(projectID) AND (expires_at IS NULL OR expires_at > now())
            FOR UPDATE
            """, logger: logger
        ).decode((String, Bool, Int).self) {
            if isAutomatic { automatic[caseID] = passes } else { manual.insert(caseID) }
        }
        var becameFlaky: [String: [WindowMove]] = [:]
        for (run, cases) in detected where auto { becameFlaky[run.id, default: []] += cases }
        var replay = AutoQuarantineReplay(releaseAfter: releaseAfter, automatic: automatic, manual: manual)
        for run in runs { replay.fold(runID: run.id, results: run.results, becameFlaky: (becameFlaky[run.id] ?? []).map(\.caseID)) }

        let verdicts = Dictionary(detected.flatMap { pair in pair.cases.map { ($0.caseID, (pair.run.branch, $0.verdict)) } }, uniquingKeysWith: { _, last in last })
        let added = Set(replay.changes.filter(\.quarantined).map(\.caseID))
        // What the table must hold now: new automatic rows, released ones gone, counts of the rest.
        let inserts = replay.counts.filter { automatic[$0.key] == nil }
        if !inserts.isEmpty {
            let ids = inserts.keys.sorted()
            let reasons = ids.map { id -> String in
                guard let (branch, verdict) = verdicts[id] else { return "flaky; quarantined automatically" }
                return "flaky (score \(String(format: "%.2f", verdict.score)) on \(branch)); quarantined automatically"
            }
            try await connection.query(
                """
                INSERT INTO case_quarantine (workspace_id, case_id, project_id, reason, quarantined_by, automatic, clean_passes)
                SELECT \(ws), t.id, \(projectID), t.reason, 'kaizen', true, t.passes
                FROM UNNEST(\(ids)::text[], \(reasons)::text[], \(ids.map { inserts[$0]! })::int[]) AS t(id, reason, passes)
                ON CONFLICT (workspace_id, case_id) DO NOTHING
                """, logger: logger)
        }
        let gone = automatic.keys.filter { replay.counts[$0] == nil }
        if !gone.isEmpty {
            try await connection.query(
                "DELETE FROM case_quarantine WHERE workspace_id = \(ws) AND case_id = ANY(\(Array(gone))::text[]) AND automatic",
                logger: logger)
        }
        // A case released and quarantined again within the batch keeps its row, its count restarted.
        let kept = replay.counts.filter { automatic[$0.key] != nil && (automatic[$0.key] != $0.value || added.contains($0.key)) }
        if !kept.isEmpty {
            let ids = Array(kept.keys)
            try await connection.query(
                """
                UPDATE case_quarantine q SET clean_passes = t.passes FROM UNNEST(\(ids)::text[], \(ids.map { kept[$0]! })::int[]) AS t(id, passes)
                WHERE q.workspace_id = \(ws) AND q.case_id = t.id AND q.automatic
                """, logger: logger)
        }
        // Ids are made in the changes' order, so the feed lists them as they happened.
        var events: [Bool: (ids: [String], subjects: [String], payloads: [String])] = [:]
        for change in replay.changes {
            var payload: [String: Any] = ["caseId": change.caseID, "runId": change.runID, "automatic": true, "by": "kaizen"]
            if change.quarantined, let (branch, verdict) = verdicts[change.caseID] {
                payload["branch"] = branch
                payload["score"] = verdict.score
            } else if !change.quarantined {
                payload["cleanPasses"] = releaseAfter
            }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]), as: UTF8.self)
            events[change.quarantined, default: ([], [], [])].ids.append(ResourceID.make(.event))
            events[change.quarantined]!.subjects.append(change.caseID)
            events[change.quarantined]!.payloads.append(json)
        }
        for (quarantined, batch) in events.sorted(by: { $0.key && !$1.key }) {
            try await recordEvents(
                ids: batch.ids, projectID: projectID, kind: quarantined ? "case.quarantined" : "case.released",
                subjects: batch.subjects, payloads: batch.payloads, workspaceID: ws, on: connection, logger: logger)
        }
    }

    /// Cases that both passed and failed on one commit: each run of the batch against the (at most 8) latest
    /// other rolled-up runs of the project on its commit — re-runs, or runs of other jobs. The stats keep the
    /// latest such finding with a passing and a failing run. A run whose commit has no other run (nearly
    /// every push) costs one index probe; otherwise its failures are looked up by case in the others, and
    /// the others' failures read once.
    static func recordSameCommitEvidence(
        _ runs: [RolledRun], projectID: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger
    ) async throws {
        var others: [String: [String]] = [:]
        var commitOf: [String: String] = [:]
        for try await (runID, commit, other) in try await connection.query(
            """
            SELECT b.id, b.commit_sha, o.id FROM runs b
            JOIN LATERAL (SELECT r.id FROM runs r
                          WHERE r.workspace_id = b.workspace_id AND r.project_id = b.project_id AND r.commit_sha = b.commit_sha
                            AND r.id <> b.id AND r.rolled_up_at IS NOT NULL
                          ORDER BY r.seq DESC LIMIT 8) o ON true
            WHERE b.workspace_id = \(ws) AND b.id = ANY(\(runs.map(\.id))::text[]) AND b.commit_sha IS NOT NULL
            """, logger: logger
        ).decode((String, String, String).self) {
            others[runID, default: []].append(other)
            commitOf[runID] = commit
        }
        guard !others.isEmpty else { return }
        // Per case: (commit, passing run, failing run); runs go in finalize order, so the latest finding stays.
        var found: [String: (String, String, String)] = [:]
        for run in runs {
            guard let otherRuns = others[run.id], let commit = commitOf[run.id] else { continue }
            var failing: [String] = []
            var seen: Set<String> = []
            var passing: Set<String> = []
            for result in run.results {
                if result.status.isFailing, seen.insert(result.caseID).inserted { failing.append(result.caseID) }
                if result.status == .passed { passing.insert(result.caseID) }
            }
            if !failing.isEmpty {
                for try await (caseID, passedRun) in try await connection.query(
                    """
                    SELECT case_id, run_id FROM case_results
                    WHERE workspace_id = \(ws) AND case_id = ANY(\(failing)::text[]) AND run_id = ANY(\(otherRuns)::text[]) AND status = 'passed'
                    """, logger: logger
                ).decode((String, String).self) {
                    found[caseID] = (commit, passedRun, run.id)
                }
            }
            for try await (caseID, failedRun) in try await connection.query(
                """
                SELECT case_id, run_id FROM case_results
                WHERE workspace_id = \(ws) AND run_id = ANY(\(otherRuns)::text[]) AND status = ANY(\(CaseStatus.failingValues))
                """, logger: logger
            ).decode((String, String).self) where passing.contains(caseID) {
                found[caseID] = (commit, run.id, failedRun)
            }
        }
        guard !found.isEmpty else { return }
        let ids = Array(found.keys)
        try await connection.query(
            """
            UPDATE case_stats t SET same_commit_sha = u.commit_sha, same_commit_runs = ARRAY[u.passed_run, u.failed_run],
                   same_commit_at = now()
            FROM UNNEST(\(ids)::text[], \(ids.map { found[$0]!.0 })::text[], \(ids.map { found[$0]!.1 })::text[],
                        \(ids.map { found[$0]!.2 })::text[]) AS u(case_id, commit_sha, passed_run, failed_run)
            WHERE t.workspace_id = \(ws) AND t.case_id = u.case_id
            """, logger: logger)
    }

    /// The replay's detections, one entry per run in the order runs were first folded, each run's cases in
    /// the order of its results — as an unsliced fold lists them (window slices list a run once each).
    static func detectedByRun(_ detected: [(run: RolledRun, cases: [WindowMove])], runs: [RolledRun])
        -> [(run: RolledRun, cases: [WindowMove])]
    {
        let full = Dictionary(runs.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var order: [String] = []
        var slices: [String: Int] = [:]
        var merged: [String: [WindowMove]] = [:]
        for (run, cases) in detected {
            if merged[run.id] == nil { order.append(run.id) }
            merged[run.id, default: []].append(contentsOf: cases)
            slices[run.id, default: 0] += 1
        }
        return order.compactMap { id in
            guard let run = full[id], var cases = merged[id] else { return nil }
            if slices[id, default: 0] > 1, cases.count > 1 {
                // Positions of the detected cases only (usually a few of a big run's).
                var position = Dictionary(cases.map { ($0.caseID, Int.max) }, uniquingKeysWith: { first, _ in first })
                for (index, result) in run.results.enumerated() where position[result.caseID] == .max { position[result.caseID] = index }
                cases.sort { (position[$0.caseID] ?? .max, $0.caseID) < (position[$1.caseID] ?? .max, $1.caseID) }
            }
            return (run, cases)
        }
    }

    /// The runs' results: those their finalize on this node handed over (`FreshResults`), the others read,
    /// each run's as one row of arrays (decoding 10,000 rows one by one cost more than the query).
    static func readResults(
        _ subjects: [RollUpSubject], fresh: FreshResults, workspaceID ws: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> (runs: [RolledRun], failing: FailingRows) {
        var byRun: [String: [RolledResult]] = [:]
        var failing = FailingRows()
        var unread: [String] = []
        for subject in subjects {
            if RollUpTuning.foldsFreshResults, let handed = await fresh.take(runID: subject.runID) {
                byRun[subject.runID] = handed.rolled(runID: subject.runID, failing: &failing)
            } else {
                unread.append(subject.runID)
            }
        }
        guard !unread.isEmpty else {
            return (subjects.map { RolledRun(id: $0.runID, branch: $0.branch, createdAt: $0.createdAt, seq: $0.seq, results: byRun[$0.runID] ?? []) }, failing)
        }
        // One sort of the rows (they arrive in ordinal order) instead of one per aggregate: an ordered
        // `array_agg` sorts its own input, four sorts of every run. The ordinals come along so the order is
        // checked, not assumed (PostgreSQL keeps a sorted subquery's order in practice, without promising it).
        for try await (runID, ordinals, caseIDs, statuses, retried, durations) in try await connection.query(
            """
            SELECT run_id, array_agg(ordinal), array_agg(case_id), array_agg(status), array_agg(flaky), array_agg(duration_ms)
            FROM (SELECT run_id, ordinal, case_id, status, flaky, duration_ms FROM case_results
                  WHERE workspace_id = \(ws) AND run_id = ANY(\(unread)::text[]) ORDER BY run_id, ordinal) r
            GROUP BY run_id
            """, logger: logger
        ).decode((String, [Int32], [String], [String], [Bool], [Int64]).self) {
            guard caseIDs.count == ordinals.count, caseIDs.count == statuses.count, caseIDs.count == retried.count,
                caseIDs.count == durations.count
            else { continue }
            var order = Array(caseIDs.indices)
            if zip(ordinals, ordinals.dropFirst()).contains(where: { $0 > $1 }) { order.sort { ordinals[$0] < ordinals[$1] } }
            var results: [RolledResult] = []
            results.reserveCapacity(caseIDs.count)
            for index in order {
                let status = CaseStatus(rawValue: statuses[index]) ?? .broken
                results.append(RolledResult(caseID: caseIDs[index], status: status, retried: retried[index], durationMS: durations[index]))
                if status.isFailing { failing.append(runID, ordinals[index]) }
            }
            byRun[runID] = results
        }
        let runs = subjects.map {
            RolledRun(id: $0.runID, branch: $0.branch, createdAt: $0.createdAt, seq: $0.seq, results: byRun[$0.runID] ?? [])
        }
        return (runs, failing)
    }

    /// The batch's failing results by key (run, ordinal): only they carry a failure fingerprint or count
    /// against a defect, so the totals look them up instead of scanning every result of the runs again.
    /// Each statement looks them up one by one (`CROSS JOIN LATERAL (… LIMIT 1)`, a primary-key probe each):
    /// joined plainly, the planner took the workspace's whole fingerprint index once `case_results` held
    /// millions of rows — 22,000 pages read and 0.96 s per batch under the sustained push (pg_stat_statements).
    struct FailingRows {
        var runIDs: [String] = []
        var ordinals: [Int32] = []

        var isEmpty: Bool { runIDs.isEmpty }

        mutating func append(_ runID: String, _ ordinal: Int32) {
            runIDs.append(runID)
            ordinals.append(ordinal)
        }
    }

    /// Whether the project has rolled up a run of another branch than `branch` — and so may have windows
    /// there. Every rolled-up run adds to its branch's daily series (nothing deletes from it), and windows
    /// come only from rolled-up runs, so "no other branch in the series" means "no window on another branch":
    /// a probe of a few hundred index entries at most, where looking up other branches case by case cost
    /// 20–30 ms per 10,000 moved cases and 150–170 ms per 50,000.
    static func hasOtherBranch(
        than branch: String, projectID: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        for try await found in try await connection.query(
            """
            SELECT EXISTS (SELECT 1 FROM project_daily WHERE workspace_id = \(ws) AND project_id = \(projectID) AND branch <> \(branch))
            """, logger: logger
        ).decode(Bool.self) {
            return found
        }
        return true
    }

    /// Extends each case's window on the runs' branch with the runs' outcomes (one write per window),
    /// and replays the moved windows onto the cases' verdicts. `soleBranch` says the project has windows on
    /// no other branch (`hasOtherBranch`).
    static func foldWindows(
        _ runs: [RolledRun], projectID: String, policy: FlakyPolicy, soleBranch: Bool, into replay: inout CaseVerdictReplay,
        steps: inout StepTimings,
        workspaceID ws: String, on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard let branch = runs.first?.branch else { return }
        var caseIDs: [String] = []
        var seen: Set<String> = []
        for run in runs {
            for result in run.results where result.status != .skipped && seen.insert(result.caseID).inserted {
                caseIDs.append(result.caseID)
            }
        }
        guard !caseIDs.isEmpty else { return }
        // Windows are independent per case: a big run's are read, folded and written a slice of cases at a
        // time, so the memory a roll-up holds is bounded by the slice, not the run (a 100k-case run's windows
        // in one piece held 63 MB at once).
        let sliceSize = max(1, RollUpTuning.windowSliceCases)
        let numbers = RollUpStage.RunNumbers(runs)
        try await RollUpStage.clear(RollUpStage.windowsTable, on: connection, logger: logger)
        // Slices of consecutive ids (in the database's byte order), so each one's windows are one range of the
        // primary key (`readWindows`). Which case falls in which slice changes nothing: cases fold independently,
        // and `detectedByRun` puts the events of a sliced fold back in the run's order.
        steps.start()
        let sliced = caseIDs.count > sliceSize
        // Sorted by `ByteOrder` (a comparator over `utf8` took 0.35–0.59 s for 100,000 case keys), also when there
        // is one slice: its ends are the range `readWindows` reads.
        caseIDs = ByteOrder.sorted(caseIDs)
        // Each result goes to its case's slice in one pass (filtering the runs once per slice hashed every
        // result's id once per slice).
        var sliceRuns: [[[RolledResult]]] = []
        if sliced {
            var sliceOf: [String: Int] = [:]
            sliceOf.reserveCapacity(caseIDs.count)
            for (position, caseID) in caseIDs.enumerated() { sliceOf[caseID] = position / sliceSize }
            let slices = (caseIDs.count + sliceSize - 1) / sliceSize
            sliceRuns = Array(repeating: Array(repeating: [], count: runs.count), count: slices)
            for (number, run) in runs.enumerated() {
                for result in run.results {
                    if let slice = sliceOf[result.caseID] { sliceRuns[slice][number].append(result) }
                }
            }
        }
        steps.lap("windows.slices")
        for (slice, start) in stride(from: 0, to: caseIDs.count, by: sliceSize).enumerated() {
            let members = caseIDs[start..<min(start + sliceSize, caseIDs.count)]
            let runsOfSlice: [RolledRun]
            if sliced {
                runsOfSlice = zip(runs, sliceRuns[slice]).map {
                    RolledRun(id: $0.id, branch: $0.branch, createdAt: $0.createdAt, seq: $0.seq, results: $1)
                }
                sliceRuns[slice] = []
            } else {
                runsOfSlice = runs
            }
            try await foldWindowSlice(
                Set(members), bounds: (members.first!, members.last!), of: runsOfSlice, branch: branch, numbers: numbers,
                policy: policy, soleBranch: soleBranch, into: &replay, steps: &steps,
                workspaceID: ws, on: connection, logger: logger)
        }
        // The slices' windows, staged, are written in one statement.
        steps.start()
        try await RollUpStage.applyWindows(branch: branch, projectID: projectID, runs: numbers, workspaceID: ws, on: connection, logger: logger)
        steps.lap("windows.write")
    }

    /// Reads, folds and stages one slice of the cases' windows; the verdicts of the moved ones are replayed.
    static func foldWindowSlice(
        _ caseIDs: Set<String>, bounds: (low: String, high: String), of runs: [RolledRun], branch: String, numbers: RollUpStage.RunNumbers,
        policy: FlakyPolicy, soleBranch: Bool, into replay: inout CaseVerdictReplay, steps: inout StepTimings, workspaceID ws: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        steps.start()
        let stored = try await readWindows(of: caseIDs, bounds: bounds, branch: branch, workspaceID: ws, on: connection, logger: logger)
        steps.lap("windows.read")
        var fold = WindowFold(policy: policy, stored: stored)
        for run in runs { fold.fold(run) }
        steps.lap("windows.fold")
        try await writeWindows(fold, runs: numbers, steps: &steps, on: connection, logger: logger)
        defer { steps.lap("windows.verdicts") }

        // Each moved case: was it flaky before the batch, and its flakiest window on other branches (one
        // index lookup per case: whatever the statistics of freshly filled tables say, a scan of the
        // workspace's windows filtered by a long list is not chosen).
        let moved = fold.movedCases
        guard !moved.isEmpty else { return }
        var storedFlaky: [String: Bool] = [:]
        if soleBranch {
            // With one branch a case's stored verdict is its window's (`liftVerdicts` lifts from it alone, and
            // a policy change rescores both), which is the stored window's verdict under the policy — or not
            // flaky, with no window yet. No look-up.
            for caseID in moved { storedFlaky[caseID] = stored[caseID]?.verdict(policy).isFlaky ?? false }
            replay.replay(fold, branch: branch, storedFlaky: storedFlaky, otherBranches: [:])
            return
        }
        var others: [String: BranchVerdict] = [:]
        for try await (caseID, wasFlaky, otherBranch, otherScore, otherFlaky) in try await connection.query(
            """
            SELECT m.case_id, COALESCE(s.is_flaky, false), l.branch, l.score, l.is_flaky FROM UNNEST(\(moved)::text[]) AS m(case_id)
            LEFT JOIN case_stats s ON s.workspace_id = \(ws) AND s.case_id = m.case_id
            LEFT JOIN LATERAL (SELECT branch, score, is_flaky FROM case_windows w
                               WHERE w.workspace_id = \(ws) AND w.case_id = m.case_id AND w.branch <> \(branch)
                               ORDER BY is_flaky DESC, score DESC, branch LIMIT 1) l ON true
            """, logger: logger
        ).decode((String, Bool, String?, Double?, Bool?).self) {
            storedFlaky[caseID] = wasFlaky
            if let otherBranch, let otherScore, let otherFlaky {
                others[caseID] = BranchVerdict(branch: otherBranch, score: otherScore, isFlaky: otherFlaky)
            }
        }
        replay.replay(fold, branch: branch, storedFlaky: storedFlaky, otherBranches: others)
    }

    /// The stored windows of `caseIDs` on `branch`. Read as one range of the primary key, from the smallest id to
    /// the largest (`bounds`, in byte order), keeping the cases asked for: a project's cases were mostly made together, so their ids are
    /// neighbours, and a range costs a fraction of looking each one up (psql, 20,000 of 60,000 windows:
    /// 45–51 ms against 111–126 ms for `case_id = ANY(…)`). A range holding many more windows than asked for
    /// (a few cases of a big project) stops at twice their number and is read case by case instead.
    static func readWindows(
        of caseIDs: Set<String>, bounds: (low: String, high: String), branch: String, workspaceID ws: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [String: FlakyHistory] {
        guard !caseIDs.isEmpty else { return [:] }
        let (low, high) = bounds
        let cap = 2 * caseIDs.count + RollUpTuning.windowRangeSlack
        // Run ids hold no commas, so a window's evidence travels as one comma-joined string.
        let range: PostgresQuery = """
            SELECT COALESCE(array_agg(case_id), '{}'), COALESCE(array_agg(outcomes), '{}'),
                   COALESCE(array_agg(array_to_string(evidence, ',')), '{}')
            FROM (SELECT case_id, outcomes, evidence FROM case_windows
                  WHERE workspace_id = \(ws) AND case_id >= \(low) AND case_id <= \(high) AND branch = \(branch)
                  LIMIT \(cap)) w
            """
        if let stored = try await windows(from: range, keeping: caseIDs, below: cap, on: connection, logger: logger) { return stored }
        let byCase: PostgresQuery = """
            SELECT COALESCE(array_agg(case_id), '{}'), COALESCE(array_agg(outcomes), '{}'),
                   COALESCE(array_agg(array_to_string(evidence, ',')), '{}')
            FROM case_windows
            WHERE workspace_id = \(ws) AND branch = \(branch) AND case_id = ANY(\(Array(caseIDs))::text[])
            """
        return try await windows(from: byCase, keeping: nil, on: connection, logger: logger) ?? [:]
    }

    /// The windows in the one row of arrays `query` answers (case ids, outcomes, comma-joined evidence), those of
    /// `wanted` only when given; nil when the row holds `limit` windows or more, or is malformed.
    static func windows(
        from query: PostgresQuery, keeping wanted: Set<String>?, below limit: Int = .max, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [String: FlakyHistory]? {
        var stored: [String: FlakyHistory]?
        for try await (ids, outcomes, evidence) in try await connection.query(query, logger: logger).decode(([String], [String], [String]).self) {
            guard ids.count == outcomes.count, ids.count == evidence.count, ids.count < limit else { continue }
            var found: [String: FlakyHistory] = [:]
            found.reserveCapacity(wanted?.count ?? ids.count)
            for index in ids.indices where wanted?.contains(ids[index]) ?? true {
                found[ids[index]] = FlakyHistory(outcomes: outcomes[index], evidence: Self.evidence(evidence[index]))
            }
            stored = found
        }
        return stored
    }

    /// A window's evidence runs from their comma-joined text.
    static func evidence(_ joined: String) -> [String] {
        joined.isEmpty ? [] : joined.split(separator: ",").map(String.init)
    }

    /// Stages the folded windows that changed (`RollUpStage`), marking which exist.
    ///
    /// A full window of one outcome (a case that passes every time, once it has `maxWindow` results on
    /// the branch) comes out of a fold as it went in, and its verdict with it, so it is not written:
    /// in a long-lived project that is most of a run's windows. (`updated_at` is when a window last changed.)
    static func writeWindows(
        _ fold: WindowFold, runs: RollUpStage.RunNumbers, steps: inout StepTimings,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        var rows: [RollUpStage.WindowRow] = []
        rows.reserveCapacity(fold.touched.count)
        fold.forEachTouched { caseID, history, verdict, lastFlipAt, before in
            if let before, before.outcomes == history.outcomes, before.evidence == history.evidence, lastFlipAt == nil { return }
            rows.append(
                RollUpStage.WindowRow(caseID: caseID, existing: before != nil, history: history, verdict: verdict, lastFlipAt: lastFlipAt))
        }
        steps.lap("windows.columns")
        defer { steps.lap("windows.copy") }
        try await RollUpStage.copyWindows(rows, runs: runs, on: connection, logger: logger)
    }

    /// Folds the runs into each case's stats — one write per case for the whole batch — taking for the
    /// cases in `verdicts` the verdict the replay ended with. `flaky_since` restarts (this transaction's
    /// now()) for a case that became flaky during the batch, and is cleared for one that is not flaky.
    ///
    /// Tried and not kept (issue 13): computing the deltas in SQL from the stored results (one hashed aggregate
    /// merged in the same statement, no bound arrays). Alone it was 20 % faster at 50k cases and no faster at
    /// 10k; under the sustained push it lost (20.0–21.0k against 20.6–23.4k cases/s, lag p99 11.1–11.2 s
    /// against 9.4–10.0 s, alternated): reading the results again costs PostgreSQL — the scarce CPU there —
    /// more than staging the deltas of the results this roll-up already holds.
    static func writeCaseStats(
        _ runs: [RolledRun], projectID: String, verdicts: [String: CaseVerdictChange], steps: inout StepTimings, workspaceID ws: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        steps.start()
        let (order, deltas) = CaseStatsDelta.fold(runs)
        steps.lap("stats.fold")
        guard !order.isEmpty else { return }
        // A project's first roll-up has no stats to update: all its cases are inserted.
        let known = try await connection.projectHasRows(in: "case_stats", projectID: projectID, workspaceID: ws, logger: logger)
        steps.lap("stats.known")
        // Staged a slice of cases at a time, like the windows (the rows of a 100k-case run at once were tens
        // of megabytes), and written in one statement.
        let numbers = RollUpStage.RunNumbers(runs)
        try await RollUpStage.clear(RollUpStage.statsTable, on: connection, logger: logger)
        let sliceSize = max(1, RollUpTuning.windowSliceCases)
        for start in stride(from: 0, to: order.count, by: sliceSize) {
            try await RollUpStage.copyStats(
                order[start..<min(start + sliceSize, order.count)], deltas: deltas, verdicts: verdicts, runs: numbers,
                on: connection, logger: logger)
        }
        steps.lap("stats.copy")
        try await RollUpStage.applyStats(known: known, staged: order.count, projectID: projectID, runs: numbers, workspaceID: ws, on: connection, logger: logger)
        steps.lap(known ? "stats.update" : "stats.insert")
    }

    /// The runs' totals: the daily series, failure clusters with their cases, and defect attribution. One
    /// statement of each per batch, reading the batch's failing results by key (`FailingRows`: scans of every
    /// result of the runs before, four per run before that);
    /// the batch leaves exactly what its runs one by one in finalize order leave, as each update is a sum,
    /// a minimum or a maximum — ties kept as one by one keeps them — and a new cluster's type and sample
    /// come from its first run.
    ///
    /// Tried and not kept (issue 13, 2026-12-01): defects in the clusters' statement too, over one lookup of the
    /// failing results. Under `sustained --minutes 5` the roll-up queue then grew to 31–33 in the first half and
    /// lag p99 was 20.7–22.5 s, against 14.6 s with separate statements the same night. (Clusters and their cases
    /// in one statement, since migration 20: sustained lag p99 3.20–3.91 s, as before it.)
    static func foldBatchTotals(
        _ runs: [RolledRun], failing: FailingRows, projectID: String, steps: inout StepTimings, workspaceID ws: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        let ids = runs.map(\.id)
        // The duration sums come from the results already read.
        let durations = runs.map { $0.results.reduce(Int64(0)) { $0 + $1.durationMS } }
        try await connection.query(
            """
            INSERT INTO project_daily (workspace_id, project_id, branch, day, runs, passed, failed, broken, skipped, flaky, duration_ms)
            SELECT u.workspace_id, u.project_id, u.branch, (u.created_at AT TIME ZONE 'UTC')::date, count(*), sum(u.passed),
                   sum(u.failed), sum(u.broken), sum(u.skipped), sum(u.flaky), sum(d.duration_ms)
            FROM runs u JOIN UNNEST(\(ids)::text[], \(durations)::int8[]) AS d(id, duration_ms) ON d.id = u.id
            WHERE u.workspace_id = \(ws)
            GROUP BY u.workspace_id, u.project_id, u.branch, (u.created_at AT TIME ZONE 'UTC')::date
            ON CONFLICT (workspace_id, project_id, branch, day) DO UPDATE SET
                runs = project_daily.runs + EXCLUDED.runs, passed = project_daily.passed + EXCLUDED.passed,
                failed = project_daily.failed + EXCLUDED.failed, broken = project_daily.broken + EXCLUDED.broken,
                skipped = project_daily.skipped + EXCLUDED.skipped, flaky = project_daily.flaky + EXCLUDED.flaky,
                duration_ms = project_daily.duration_ms + EXCLUDED.duration_ms
            """, logger: logger)
        steps.lap("totals.daily")
        // Clusters and defects count failing results only; a batch without any has nothing more to add.
        guard !failing.isEmpty else { return }
        // Per cluster: the first occurrence is the earliest created run (of equals, the earliest in finalize
        // order, as `<` keeps the stored one), the last the latest (of equals, the latest, as `>=` takes
        // the new one). The runs' own rows are read once (a materialized CTE), not joined per result.
        //
        // The cluster's cases in the same statement: new (cluster, case) pairs raise its affected-case count,
        // and its five most recently struck cases are the top five of the stored five and the batch's pairs
        // (a pair's last_seen_at only grows, so no pair outside both can rank above them; migration 20).
        try await connection.query(
            """
            WITH u AS MATERIALIZED (SELECT id, seq, created_at FROM runs WHERE workspace_id = \(ws) AND id = ANY(\(ids)::text[])),
            f AS MATERIALIZED (
                SELECT r.run_id, r.case_id, r.fingerprint, r.error_type, left(r.error_message, 500) AS sample
                FROM UNNEST(\(failing.runIDs)::text[], \(failing.ordinals)::int4[]) AS f(run_id, ordinal)
                CROSS JOIN LATERAL (SELECT r.run_id, r.case_id, r.fingerprint, r.error_type, r.error_message FROM case_results r
                                    WHERE r.workspace_id = \(ws) AND r.run_id = f.run_id AND r.ordinal = f.ordinal LIMIT 1) r
                WHERE r.fingerprint IS NOT NULL),
            pairs AS (
                INSERT INTO failure_group_cases (workspace_id, project_id, fingerprint, case_id, occurrences, last_seen_at)
                SELECT \(ws), \(projectID), f.fingerprint, f.case_id, count(*)::int, max(u.created_at)
                FROM f JOIN u ON u.id = f.run_id
                GROUP BY f.fingerprint, f.case_id
                ON CONFLICT (workspace_id, project_id, fingerprint, case_id) DO UPDATE SET
                    occurrences = failure_group_cases.occurrences + EXCLUDED.occurrences,
                    last_seen_at = GREATEST(failure_group_cases.last_seen_at, EXCLUDED.last_seen_at)
                RETURNING fingerprint, case_id, last_seen_at, xmax = 0 AS inserted),
            struck AS (
                SELECT fingerprint, (count(*) FILTER (WHERE inserted))::int AS added,
                       (array_agg(case_id ORDER BY last_seen_at DESC, case_id))[1:5] AS ids,
                       (array_agg(last_seen_at ORDER BY last_seen_at DESC, case_id))[1:5] AS ats
                FROM pairs GROUP BY fingerprint),
            per_run AS (
                SELECT run_id, fingerprint, min(error_type) AS error_type, min(sample) AS sample, count(*) AS n
                FROM f GROUP BY run_id, fingerprint)
            INSERT INTO failure_groups (workspace_id, project_id, fingerprint, error_type, sample_message,
                                        first_seen_run_id, first_seen_at, last_seen_run_id, last_seen_at, runs, occurrences,
                                        affected_cases, recent_cases, recent_seen)
            SELECT \(ws), \(projectID), c.fingerprint, c.error_type, c.sample, c.first_run, c.first_at, c.last_run, c.last_at,
                   c.runs, c.n, s.added, s.ids, s.ats
            FROM (SELECT p.fingerprint,
                         (array_agg(p.error_type ORDER BY u.seq))[1] AS error_type, (array_agg(p.sample ORDER BY u.seq))[1] AS sample,
                         (array_agg(u.id ORDER BY u.created_at, u.seq))[1] AS first_run, min(u.created_at) AS first_at,
                         (array_agg(u.id ORDER BY u.created_at DESC, u.seq DESC))[1] AS last_run, max(u.created_at) AS last_at,
                         count(*) AS runs, sum(p.n) AS n
                  FROM per_run p JOIN u ON u.id = p.run_id
                  GROUP BY p.fingerprint) c
            JOIN struck s ON s.fingerprint = c.fingerprint
            ON CONFLICT (workspace_id, project_id, fingerprint) DO UPDATE SET
                first_seen_run_id = CASE WHEN EXCLUDED.first_seen_at < failure_groups.first_seen_at
                                         THEN EXCLUDED.first_seen_run_id ELSE failure_groups.first_seen_run_id END,
                first_seen_at = LEAST(failure_groups.first_seen_at, EXCLUDED.first_seen_at),
                last_seen_run_id = CASE WHEN EXCLUDED.last_seen_at >= failure_groups.last_seen_at
                                        THEN EXCLUDED.last_seen_run_id ELSE failure_groups.last_seen_run_id END,
                last_seen_at = GREATEST(failure_groups.last_seen_at, EXCLUDED.last_seen_at),
                runs = failure_groups.runs + EXCLUDED.runs,
                occurrences = failure_groups.occurrences + EXCLUDED.occurrences,
                affected_cases = failure_groups.affected_cases + EXCLUDED.affected_cases,
                (recent_cases, recent_seen) = (
                    SELECT array_agg(t.id ORDER BY t.at DESC, t.id), array_agg(t.at ORDER BY t.at DESC, t.id)
                    FROM (SELECT id, at FROM (SELECT DISTINCT ON (id) id, at
                                              FROM unnest(failure_groups.recent_cases || EXCLUDED.recent_cases,
                                                          failure_groups.recent_seen || EXCLUDED.recent_seen) AS x(id, at)
                                              ORDER BY id, at DESC) d
                          ORDER BY at DESC, id LIMIT 5) t)
            """, logger: logger)
        steps.lap("totals.clusters")
        try await attributeToDefects(failing, projectID: projectID, workspaceID: ws, on: connection, logger: logger)
        steps.lap("totals.defects")
    }

    /// `flaky.detected` for each case, described by the window that made it flaky; `detail` adds
    /// what caused it (the run, or a policy change).
    static func recordFlakyDetected(
        _ caseIDs: [String], windows: [String: FlakyWindowVerdict], detail: [String: String], projectID: String,
        workspaceID ws: String, on connection: PostgresConnection, logger: Logger
    ) async throws {
        var subjects: [String] = []
        var payloads: [String] = []
        for caseID in caseIDs {
            guard let window = windows[caseID] else { continue }
            var payload: [String: Any] = [
                "caseId": caseID, "branch": window.branch, "score": window.verdict.score, "flips": window.verdict.flips,
                "retryPasses": window.verdict.retryPasses, "results": window.verdict.results, "evidenceRunIds": window.evidence,
            ]
            for (key, value) in detail { payload[key] = value }
            let data = try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])
            subjects.append(caseID)
            payloads.append(String(decoding: data, as: UTF8.self))
        }
        try await recordEvents(
            ids: subjects.map { _ in ResourceID.make(.event) }, projectID: projectID, kind: "flaky.detected",
            subjects: subjects, payloads: payloads, workspaceID: ws, on: connection, logger: logger)
    }

    /// Copies each case's flakiest branch verdict into `case_stats`; returns the cases that just became flaky.
    static func liftVerdicts(caseIDs: [String], workspaceID ws: String, on connection: PostgresConnection, logger: Logger)
        async throws -> [String]
    {
        var became: [String] = []
        // `flaky_since` is set to this transaction's now() only on a false → true transition, which is
        // how the RETURNING clause tells new flaky cases from ones that already were.
        for try await caseID in try await connection.query(
            """
            UPDATE case_stats s SET is_flaky = b.is_flaky, flaky_score = b.score, flaky_branch = b.branch,
                   flaky_since = CASE WHEN NOT b.is_flaky THEN NULL WHEN s.is_flaky THEN s.flaky_since ELSE now() END
            FROM (SELECT DISTINCT ON (case_id) case_id, branch, score, is_flaky FROM case_windows
                  WHERE workspace_id = \(ws) AND case_id = ANY(\(caseIDs)::text[])
                  ORDER BY case_id, is_flaky DESC, score DESC, branch) b
            WHERE s.workspace_id = \(ws) AND s.case_id = b.case_id
            RETURNING s.case_id, s.is_flaky AND s.flaky_since = now()
            """, logger: logger
        ).decode((String, Bool).self) where caseID.1 {
            became.append(caseID.0)
        }
        return became
    }

    static func recordEvents(
        ids: [String], projectID: String, kind: String, subjects: [String], payloads: [String], workspaceID ws: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard !ids.isEmpty else { return }
        // The outbox in the same statement: each event's deliveries to the project's webhooks that want it,
        // committed (or rolled back) with the change that caused it.
        try await connection.query(
            """
            WITH e AS (
                INSERT INTO events (workspace_id, id, project_id, kind, subject_id, payload)
                SELECT \(ws), t.id, \(projectID), \(kind), t.subject, t.payload::jsonb
                FROM UNNEST(\(ids)::text[], \(subjects)::text[], \(payloads)::text[]) AS t(id, subject, payload)
                RETURNING workspace_id, id, project_id, kind)
            \(unescaped: WebhookOutbox.fanOut)
            """, logger: logger)
    }

    /// Counts each run against every defect whose cases or clusters it failed in.
    static func attributeToDefects(
        _ failing: FailingRows, projectID: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger
    ) async throws {
        // Most projects link no defect: one index probe says so, instead of the join below (0.5–1.5 s per batch
        // under the sustained push even with nothing to join; a link made meanwhile counts history itself).
        guard try await connection.projectHasRows(in: "defect_links", projectID: projectID, workspaceID: ws, logger: logger) else { return }
        try await connection.query(
            """
            INSERT INTO defect_runs (workspace_id, defect_id, run_id, run_at)
            SELECT DISTINCT l.workspace_id, l.defect_id, r.run_id, u.created_at
            FROM UNNEST(\(failing.runIDs)::text[], \(failing.ordinals)::int4[]) AS f(run_id, ordinal)
            CROSS JOIN LATERAL (SELECT r.workspace_id, r.run_id, r.case_id, r.fingerprint FROM case_results r
                                WHERE r.workspace_id = \(ws) AND r.run_id = f.run_id AND r.ordinal = f.ordinal LIMIT 1) r
            JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
            JOIN defect_links l ON l.workspace_id = r.workspace_id AND l.project_id = \(projectID)
                 AND ((l.kind = 'case' AND l.target = r.case_id) OR (l.kind = 'group' AND l.target = r.fingerprint))
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }
}
