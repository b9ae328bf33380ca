import Domains
import Foundation
import KaizenTestSupport
import Logging
import PostgresNIO
import Storage
import Testing

/// Runs folded as batches leave exactly what folding them one by one leaves: the same case stats,
/// windows, verdicts, `flaky.detected` events (each naming the run that caused it), daily series and
/// clusters. Two projects get the same 30-run history on two branches; one is rolled up run by run,
/// the other in batches of uneven sizes with windows folded a few cases at a time, and every roll-up table is compared with run ids and times
/// translated to the runs' external ids. The first folds the results its finalizes handed over in memory, the
/// second reads them back from the database: the two must not differ either.
@Suite struct RollUpBatchTests {
    @Test func batchesFoldExactlyAsRunsOneByOne() async throws {
        try await withServer(configure: { $0.finalizeQuota.perMinute = 60_000 }) { server, admin in
            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let shard = try server.cluster.server(forShard: ws.shardID)
            let repos = try server.cluster.repositories(workspaceID: ws.id, shardID: ws.shardID)
            let logger = Logger(label: "t")
            try await Self.holdJobs(on: shard, logger: logger)
            let ids = try await Self.pushHistory(RollUpRecomputeTests.runs(count: 30), to: ["single", "batched"], as: admin)
            let single = try #require(ids["single"]), batched = try #require(ids["batched"])
            for id in single { #expect(try await repos.intelligence.rollUp(runID: id, inOrder: true) == .rolledUp) }
            // A batch that skips an earlier run with a live job waits for it and writes nothing.
            #expect(try await repos.intelligence.rollUp(runIDs: Array(batched[1..<5]), inOrder: true) == .waiting(forRunID: batched[0]))
            // Uneven batches, one crossing the infrastructure-failure run (17) and every branch change — and
            // their windows folded 3 cases at a time (a big run's slices), which must change nothing either.
            try await RollUpTuning.$foldsFreshResults.withValue(false) { () async throws -> Void in
                try await RollUpTuning.$windowSliceCases.withValue(3) { () async throws -> Void in
                    for range in [0..<1, 1..<7, 7..<8, 8..<21, 21..<30] {
                        #expect(try await repos.intelligence.rollUp(runIDs: Array(batched[range]), inOrder: true) == .rolledUp)
                    }
                }
            }
            #expect(try await repos.intelligence.rollUp(runIDs: Array(batched[3..<9]), inOrder: true) == .alreadyRolledUp)

            let (one, many) = try await shard.run { connection in
                (
                    try await Self.rollUpState(of: "single", workspaceID: ws.id, on: connection, logger: logger),
                    try await Self.rollUpState(of: "batched", workspaceID: ws.id, on: connection, logger: logger)
                )
            }
            for (table, rows) in one {
                #expect(!rows.isEmpty, "\(table) has rows")
                #expect(rows == many[table], "\(table)")
            }
            #expect(one["events"]?.isEmpty == false, "the history makes cases flaky, so there are events to compare")
        }
    }

    /// A project whose runs are all on one branch takes each case's stored verdict from its window instead of
    /// looking up other branches: the same history rolled up with and without that shortcut leaves the same
    /// rows and events — across a policy change that rescores the windows half-way.
    @Test func aSoleBranchFoldsAsTheLookUpDoes() async throws {
        try await withServer(configure: { $0.finalizeQuota.perMinute = 60_000 }) { server, admin in
            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let shard = try server.cluster.server(forShard: ws.shardID)
            let repos = try server.cluster.repositories(workspaceID: ws.id, shardID: ws.shardID)
            let logger = Logger(label: "t")
            try await Self.holdJobs(on: shard, logger: logger)
            let ids = try await Self.pushHistory(RollUpRecomputeTests.runs(count: 30), to: ["sole", "lookup"], branch: "main", as: admin)
            let policy: [String: Any] = ["window": 12, "threshold": 0.15, "minResults": 4, "minFlips": 2, "infraFailureRatio": 0.5, "infraMinCases": 10]
            for slug in ["sole", "lookup"] {
                try await RollUpTuning.$soleBranchShortcut.withValue(slug == "sole") { () async throws -> Void in
                    let runs = try #require(ids[slug])
                    for id in runs[..<12] { #expect(try await repos.intelligence.rollUp(runID: id, inOrder: true) == .rolledUp) }
                    #expect(try await admin.put("/v1/projects/\(slug)/flaky-policy", json: policy).status == 200)
                    #expect(try await repos.intelligence.rollUp(runIDs: Array(runs[12..<20]), inOrder: true) == .rolledUp)
                    for id in runs[20...] { #expect(try await repos.intelligence.rollUp(runID: id, inOrder: true) == .rolledUp) }
                }
            }
            let (sole, lookup) = try await shard.run { connection in
                (
                    try await Self.rollUpState(of: "sole", workspaceID: ws.id, on: connection, logger: logger),
                    try await Self.rollUpState(of: "lookup", workspaceID: ws.id, on: connection, logger: logger)
                )
            }
            for (table, rows) in lookup {
                #expect(!rows.isEmpty, "\(table) has rows")
                #expect(rows == sole[table], "\(table)")
            }
            let events = lookup["events"] ?? []
            #expect(events.contains { $0.contains("flaky.detected") }, "the history makes cases flaky: \(events.prefix(3))")
        }
    }

    /// A roll-up reads its cases' windows as one range of ids; a range holding many more windows than the run's
    /// cases (two cases of a project of thirty, its first and last by id) is read case by case instead. Both
    /// ways extend exactly the run's windows and nothing else.
    @Test func windowsAreReadByRangeOrCaseByCase() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "sparse", "name": "sparse"]).status == 201)
            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let shard = try server.cluster.server(forShard: ws.shardID)
            let repos = try server.cluster.repositories(workspaceID: ws.id, shardID: ws.shardID)
            let logger = Logger(label: "t")
            try await Self.holdJobs(on: shard, logger: logger)
            func push(_ id: String, _ statuses: [(String, String)]) async throws -> String {
                let cases = statuses.map { ["name": $0.0, "status": $0.1] as [String: Any] }
                let reply = try await admin.post(
                    "/v1/ingest/kensho/finalize", json: runDocument(project: "sparse", externalRunId: id, cases: cases))
                #expect(reply.status == 200, "\(reply.text)")
                return try #require(reply.object["internalRunId"] as? String)
            }
            let names = (0..<30).map { String(format: "c%02d", $0) }
            #expect(try await repos.intelligence.rollUp(runID: try await push("r0", names.map { ($0, "passed") }), inOrder: true) == .rolledUp)
            let byID = try await shard.run { connection in
                var out: [String] = []
                for try await name in try await connection.query(
                    "SELECT name FROM cases WHERE workspace_id = \(ws.id) ORDER BY id", logger: logger
                ).decode(String.self) {
                    out.append(name)
                }
                return out
            }
            let (first, last) = (try #require(byID.first), try #require(byID.last))
            // Thirty windows lie between the two: with no slack that is past the range's limit of four.
            try await RollUpTuning.$windowRangeSlack.withValue(0) { () async throws -> Void in
                let run = try await push("r1", [(first, "failed"), (last, "failed")])
                #expect(try await repos.intelligence.rollUp(runID: run, inOrder: true) == .rolledUp)
            }
            #expect(try await repos.intelligence.rollUp(runID: try await push("r2", [(first, "passed"), (last, "passed")]), inOrder: true) == .rolledUp)
            let rows = try await shard.run { connection in
                var rows: [String: (String, Int)] = [:]
                for try await (name, outcomes, runs) in try await connection.query(
                    """
                    SELECT c.name, w.outcomes, s.runs FROM case_windows w
                    JOIN cases c ON c.workspace_id = w.workspace_id AND c.id = w.case_id
                    JOIN case_stats s ON s.workspace_id = w.workspace_id AND s.case_id = w.case_id
                    WHERE w.workspace_id = \(ws.id)
                    """, logger: logger
                ).decode((String, String, Int).self) {
                    rows[name] = (outcomes, runs)
                }
                return rows
            }
            #expect(rows.count == 30)
            for name in names {
                let row = try #require(rows[name])
                if name == first || name == last {
                    #expect(row.0 == "PFP" && row.1 == 3, "\(name): \(row)")
                } else {
                    #expect(row.0 == "P" && row.1 == 1, "\(name): \(row)")
                }
            }
        }
    }

    /// A full window of one outcome is left as it is (nothing in it changes); a window that moves is written.
    @Test func unchangedFullWindowsAreNotRewritten() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "steady", "name": "steady"]).status == 201)
            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let shard = try server.cluster.server(forShard: ws.shardID)
            let repos = try server.cluster.repositories(workspaceID: ws.id, shardID: ws.shardID)
            let logger = Logger(label: "t")
            try await Self.holdJobs(on: shard, logger: logger)
            func push(_ id: String, _ statuses: [String: String]) async throws -> String {
                let cases = statuses.sorted { $0.key < $1.key }.map { ["name": $0.key, "status": $0.value] as [String: Any] }
                let reply = try await admin.post(
                    "/v1/ingest/kensho/finalize", json: runDocument(project: "steady", externalRunId: id, cases: cases))
                #expect(reply.status == 200, "\(reply.text)")
                return try #require(reply.object["internalRunId"] as? String)
            }
            #expect(try await repos.intelligence.rollUp(runID: try await push("r0", ["a": "passed", "b": "passed"]), inOrder: true) == .rolledUp)
            // As if both cases had passed 100 times on the branch.
            try await shard.run { connection in
                try await connection.query(
                    "UPDATE case_windows SET outcomes = repeat('P', 100), updated_at = '2020-01-01Z' WHERE workspace_id = \(ws.id)",
                    logger: logger)
            }
            #expect(try await repos.intelligence.rollUp(runID: try await push("r1", ["a": "passed", "b": "failed"]), inOrder: true) == .rolledUp)
            let rows = try await shard.run { connection in
                var rows: [String: (String, Int, Bool, Int)] = [:]
                for try await (name, outcomes, results, old, runs) in try await connection.query(
                    """
                    SELECT c.name, w.outcomes, w.results, w.updated_at = '2020-01-01Z', s.runs FROM case_windows w
                    JOIN cases c ON c.workspace_id = w.workspace_id AND c.id = w.case_id
                    JOIN case_stats s ON s.workspace_id = w.workspace_id AND s.case_id = w.case_id
                    WHERE w.workspace_id = \(ws.id)
                    """, logger: logger
                ).decode((String, String, Int, Bool, Int).self) {
                    rows[name] = (outcomes, results, old, runs)
                }
                return rows
            }
            let a = try #require(rows["a"]), b = try #require(rows["b"])
            #expect(a.0 == String(repeating: "P", count: 100) && a.2, "the steady window is untouched")
            #expect(a.3 == 2, "its stats still count the run")
            #expect(b.0 == String(repeating: "P", count: 99) + "F" && !b.2, "the window that moved is written")
        }
    }

    /// Creates each project and pushes it the same history, each run on its own branch or all on `branch`; the
    /// runs' ids by project, in finalize order.
    static func pushHistory(
        _ history: [(branch: String, cases: [[String: Any]])], to slugs: [String], branch: String? = nil, as admin: APIClient
    ) async throws -> [String: [String]] {
        var ids: [String: [String]] = [:]
        for slug in slugs {
            #expect(try await admin.post("/v1/projects", json: ["slug": slug, "name": slug]).status == 201)
            for (index, run) in history.enumerated() {
                let reply = try await admin.post(
                    "/v1/ingest/kensho/finalize",
                    json: runDocument(project: slug, externalRunId: "r\(index)", branch: branch ?? run.branch, cases: run.cases))
                #expect(reply.status == 200, "\(reply.text)")
                ids[slug, default: []].append(try #require(reply.object["internalRunId"] as? String))
            }
        }
        return ids
    }

    /// The worker must not touch the tests' runs: their jobs are queued a day ahead, and the tests fold them.
    static func holdJobs(on shard: PhysicalServer, logger: Logger) async throws {
        try await shard.run { connection in
            try await connection.query(
                """
                CREATE FUNCTION test_hold_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN NEW.run_after := now() + interval '1 day'; RETURN NEW; END $$
                """, logger: logger)
            try await connection.query(
                "CREATE TRIGGER test_hold_jobs BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION test_hold_jobs()", logger: logger)
        }
    }

    /// Every roll-up row of a project as sorted text, run ids and run times given as the runs' external ids.
    static func rollUpState(of slug: String, workspaceID ws: String, on connection: PostgresConnection, logger: Logger)
        async throws -> [String: [String]]
    {
        let queries: [String: PostgresQuery] = [
            "case_stats": """
                SELECT concat_ws(' ', c.name, s.runs, s.passed, s.failed, s.broken, s.skipped, s.flaky, s.total_duration_ms,
                       s.last_status, lr.external_run_id, fs.external_run_id, ls.external_run_id, coalesce(lf.external_run_id, '-'),
                       s.is_flaky, s.flaky_score, coalesce(s.flaky_branch, '-'), s.flaky_since IS NULL)
                FROM case_stats s JOIN p ON p.id = s.project_id JOIN cases c ON c.workspace_id = s.workspace_id AND c.id = s.case_id
                JOIN runs lr ON lr.workspace_id = s.workspace_id AND lr.id = s.last_run_id
                JOIN runs fs ON fs.workspace_id = s.workspace_id AND fs.project_id = p.id AND fs.created_at = s.first_seen_at
                JOIN runs ls ON ls.workspace_id = s.workspace_id AND ls.project_id = p.id AND ls.created_at = s.last_seen_at
                LEFT JOIN runs lf ON lf.workspace_id = s.workspace_id AND lf.project_id = p.id AND lf.created_at = s.last_failed_at
                WHERE s.workspace_id = \(ws)
                """,
            "case_windows": """
                SELECT concat_ws(' ', c.name, w.branch, w.outcomes, w.results, w.flips, w.retry_passes, w.score, w.is_flaky,
                       coalesce(f.external_run_id, '-'),
                       (SELECT string_agg(e.external_run_id, ',' ORDER BY x.n) FROM unnest(w.evidence) WITH ORDINALITY x(id, n)
                        JOIN runs e ON e.workspace_id = w.workspace_id AND e.id = x.id))
                FROM case_windows w JOIN p ON p.id = w.project_id JOIN cases c ON c.workspace_id = w.workspace_id AND c.id = w.case_id
                LEFT JOIN runs f ON f.workspace_id = w.workspace_id AND f.project_id = p.id AND f.created_at = w.last_flip_at
                WHERE w.workspace_id = \(ws)
                """,
            "events": """
                SELECT concat_ws(' ', e.kind, c.name, r.external_run_id, e.payload->>'branch', e.payload->>'score',
                       e.payload->>'flips', e.payload->>'results')
                FROM events e JOIN p ON p.id = e.project_id JOIN cases c ON c.workspace_id = e.workspace_id AND c.id = e.subject_id
                JOIN runs r ON r.workspace_id = e.workspace_id AND r.id = e.payload->>'runId'
                WHERE e.workspace_id = \(ws) AND e.kind = 'flaky.detected'
                """,
            "project_daily": """
                SELECT concat_ws(' ', d.branch, d.day, d.runs, d.passed, d.failed, d.broken, d.skipped, d.flaky, d.duration_ms)
                FROM project_daily d JOIN p ON p.id = d.project_id WHERE d.workspace_id = \(ws)
                """,
            "failure_groups": """
                SELECT concat_ws(' ', g.fingerprint, g.runs, g.occurrences, g.affected_cases, f.external_run_id, l.external_run_id,
                                 f.created_at = g.first_seen_at, l.created_at = g.last_seen_at, g.error_type, g.sample_message,
                                 g.recent_cases = top.ids AND g.recent_seen = top.ats)
                FROM failure_groups g JOIN p ON p.id = g.project_id
                -- Ties on the time are broken by case id, which differs between workspaces: each workspace's five
                -- are checked against its own pairs, which are compared across workspaces below.
                \(unescaped: clusterTopFive)
                JOIN runs f ON f.workspace_id = g.workspace_id AND f.id = g.first_seen_run_id
                JOIN runs l ON l.workspace_id = g.workspace_id AND l.id = g.last_seen_run_id
                WHERE g.workspace_id = \(ws)
                """,
            "failure_group_cases": """
                SELECT concat_ws(' ', g.fingerprint, c.name, g.occurrences, l.external_run_id)
                FROM failure_group_cases g JOIN p ON p.id = g.project_id
                JOIN cases c ON c.workspace_id = g.workspace_id AND c.id = g.case_id
                JOIN runs l ON l.workspace_id = g.workspace_id AND l.project_id = p.id AND l.created_at = g.last_seen_at
                WHERE g.workspace_id = \(ws)
                """,
        ]
        var state: [String: [String]] = [:]
        for (table, query) in queries {
            var sql = query
            // Every query reads its project from `p`.
            sql.sql = "WITH p AS (SELECT id FROM projects WHERE workspace_id = '\(ws)' AND slug = '\(slug)') " + sql.sql
            var rows: [String] = []
            for try await row in try await connection.query(sql, logger: logger).decode(String.self) { rows.append(row) }
            state[table] = rows.sorted()
        }
        return state
    }
}
