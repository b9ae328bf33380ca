import Domains
import Foundation
import KaizenTestSupport
import Logging
import PostgresNIO
import Storage
import Testing

/// Every roll-up the intelligence endpoints read agrees with a recomputation from the raw results,
/// after many ingests on two branches, a re-push, a roll-up that failed half-way and was retried
/// (later runs waited for it), a duplicated job, and a defect linked in the middle of the history.
@Suite struct RollUpRecomputeTests {
    /// A deterministic generator (no randomness between runs of the suite).
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    static func runs(count: Int) -> [(branch: String, cases: [[String: Any]])] {
        var rng = Generator(state: 42)
        var out: [(String, [[String: Any]])] = []
        for index in 0..<count {
            let branch = index % 3 == 2 ? "feature" : "main"
            var cases: [[String: Any]] = []
            for c in 0..<24 {
                let roll = rng.next(100)
                var item: [String: Any]
                switch (c, roll) {
                case (0..<4, _):  // flaky by construction
                    item = testCase("case-\(c)", roll < 45 ? "failed" : "passed", retries: roll > 85 ? ["failed"] : [])
                case (_, 0..<6): item = testCase("case-\(c)", "failed")
                case (_, 6..<9): item = testCase("case-\(c)", "broken")
                case (_, 9..<14): item = testCase("case-\(c)", "skipped")
                default: item = testCase("case-\(c)", "passed", retries: roll > 97 ? ["broken"] : [])
                }
                if let status = item["status"] as? String, status == "failed" || status == "broken" {
                    // Messages that differ only in numbers fall into one of three clusters.
                    let kind = ["Timeout", "ConnectionError", "AssertionError"][c % 3]
                    item["error"] = ["type": kind, "message": "\(kind) after \(rng.next(5000)) ms at 10.0.\(rng.next(9)).\(rng.next(250))"]
                }
                item["durationMs"] = rng.next(900)
                cases.append(item)
            }
            if index == 17 {
                // An infrastructure failure: everything broke.
                cases = (0..<24).map { c -> [String: Any] in
                    var item = testCase("case-\(c)", "broken")
                    item["error"] = ["type": "EnvironmentError", "message": "runner lost"]
                    return item
                }
            }
            out.append((branch, cases))
        }
        return out
    }

    @Test func rollUpsAgreeWithRecomputationAfterRepushesRetriesAndDuplicates() async throws {
        try await withServer(configure: { $0.finalizeQuota.perMinute = 60_000 }) { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let shard = try server.cluster.server(forShard: ws.shardID)
            let logger = Logger(label: "t")

            // The roll-up of the 6th run fails once, after it has written case stats and daily rows, so
            // its transaction must leave nothing behind; the worker retries it, and the runs after it wait.
            try await shard.run { connection in
                try await connection.query("CREATE SEQUENCE test_rollup_failures", logger: logger)
                try await connection.query(
                    """
                    CREATE FUNCTION test_fail_sixth() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF NEW.external_run_id = 'r5' AND NEW.rolled_up_at IS NOT NULL AND nextval('test_rollup_failures') = 1 THEN
                            RAISE EXCEPTION 'injected roll-up failure';
                        END IF;
                        RETURN NEW;
                    END $$
                    """, logger: logger)
                try await connection.query(
                    "CREATE CONSTRAINT TRIGGER test_fail_sixth AFTER UPDATE ON runs DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fail_sixth()",
                    logger: logger)
            }

            let history = Self.runs(count: 30)
            var defectID: String?
            for (index, run) in history.enumerated() {
                let reply = try await admin.post(
                    "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r\(index)", branch: run.branch, cases: run.cases))
                #expect(reply.status == 200, "\(reply.text)")
                if index == 12 {
                    // A defect over the Timeout cluster, linked when it already has history.
                    try await waitForRollUps(admin, runs: 13)
                    let groups = try await admin.get("/v1/projects/web/failure-groups").object["items"] as? [[String: Any]] ?? []
                    let timeout = try #require(groups.first { $0["errorType"] as? String == "Timeout" }?["fingerprint"] as? String)
                    let created = try await admin.post("/v1/projects/web/defects", json: ["title": "Timeouts", "failureGroups": [timeout]])
                    #expect(created.status == 201, "\(created.text)")
                    defectID = created.object["id"] as? String
                }
            }
            // A re-push of an earlier run is replayed and counts nothing twice.
            let again = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r3", branch: history[3].branch, cases: history[3].cases))
            #expect(again.object["replayed"] as? Bool == true)
            try await waitForRollUps(admin, runs: history.count)

            let jobs = try await admin.get("/v1/workspaces/default/jobs?limit=100").array
            #expect(jobs.count == history.count && jobs.allSatisfy { $0["state"] as? String == "done" })
            // The injected failure happened and r5 was folded again after it: alone on a later attempt, or
            // alone right away when it failed inside a batch of several runs.
            let attemptsOfR5 = try await shard.run { connection in
                try await connection.query("SELECT last_value FROM test_rollup_failures", logger: logger).collect().first?.decode(Int.self)
            }
            #expect((attemptsOfR5 ?? 0) >= 2, "the injected failure was retried")
            // A duplicated job (a worker that died after committing) finds nothing left to do.
            try await shard.run { connection in
                try await connection.query(
                    "UPDATE jobs SET state = 'queued', run_after = now() WHERE workspace_id = \(ws.id)", logger: logger)
            }
            try await waitForRollUps(admin, runs: history.count)
            try await Task.sleep(for: .milliseconds(500))

            // Raw material, in finalize order.
            struct RawRun { let id: String; let branch: String; let day: String; let seq: Int64 }
            struct RawResult { let run: String; let caseID: String; let status: CaseStatus; let retried: Bool; let duration: Int64; let fingerprint: String? }
            let (runs, results) = try await shard.run { connection -> ([RawRun], [RawResult]) in
                var runs: [RawRun] = []
                for try await (id, branch, day, seq) in try await connection.query(
                    """
                    SELECT id, branch, to_char((created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD'), seq FROM runs
                    WHERE workspace_id = \(ws.id) ORDER BY seq
                    """, logger: logger
                ).decode((String, String, String, Int64).self) {
                    runs.append(RawRun(id: id, branch: branch, day: day, seq: seq))
                }
                var results: [RawResult] = []
                for try await (run, caseID, status, retried, duration, fingerprint) in try await connection.query(
                    "SELECT run_id, case_id, status, flaky, duration_ms, fingerprint FROM case_results WHERE workspace_id = \(ws.id)",
                    logger: logger
                ).decode((String, String, String, Bool, Int64, String?).self) {
                    results.append(RawResult(run: run, caseID: caseID, status: CaseStatus(rawValue: status)!, retried: retried, duration: duration, fingerprint: fingerprint))
                }
                return (runs, results)
            }
            #expect(runs.count == history.count)
            let byRun = Dictionary(grouping: results, by: \.run)

            // Recompute: case totals, daily series, clusters, flakiness windows, defect runs.
            struct Totals: Equatable { var runs = 0, passed = 0, failed = 0, broken = 0, skipped = 0, flaky = 0; var duration: Int64 = 0; var last = "" }
            var cases: [String: Totals] = [:]
            var daily: [String: [Int64]] = [:]
            var clusters: [String: (runs: Int, occurrences: Int)] = [:]
            var clusterCases: [String: Int] = [:]
            var windows: [String: FlakyHistory] = [:]
            var defectRuns = Set<String>()
            let policy = FlakyPolicy.default
            let defectPath = "/v1/defects/" + (try #require(defectID))
            let linked = try await admin.get(defectPath).object["failureGroups"] as? [[String: Any]]
            let timeout = try #require(linked?.first?["fingerprint"] as? String)
            for run in runs {
                let rows = byRun[run.id] ?? []
                for r in rows {
                    var t = cases[r.caseID, default: Totals()]
                    t.runs += 1
                    switch r.status {
                    case .passed: t.passed += 1
                    case .failed: t.failed += 1
                    case .broken: t.broken += 1
                    case .skipped: t.skipped += 1
                    }
                    if r.retried { t.flaky += 1 }
                    t.duration += r.duration
                    t.last = r.status.rawValue
                    cases[r.caseID] = t
                }
                let key = "\(run.branch)|\(run.day)"
                var d = daily[key, default: [0, 0, 0, 0, 0, 0, 0]]
                d[0] += 1
                d[1] += Int64(rows.filter { $0.status == .passed }.count)
                d[2] += Int64(rows.filter { $0.status == .failed }.count)
                d[3] += Int64(rows.filter { $0.status == .broken }.count)
                d[4] += Int64(rows.filter { $0.status == .skipped }.count)
                d[5] += Int64(rows.filter(\.retried).count)
                d[6] += rows.reduce(0) { $0 + $1.duration }
                daily[key] = d
                for (fingerprint, group) in Dictionary(grouping: rows.filter { $0.fingerprint != nil }, by: { $0.fingerprint! }) {
                    clusters[fingerprint, default: (0, 0)].runs += 1
                    clusters[fingerprint, default: (0, 0)].occurrences += group.count
                    for r in group { clusterCases["\(fingerprint)|\(r.caseID)", default: 0] += 1 }
                }
                if rows.contains(where: { $0.fingerprint == timeout && $0.status.isFailing }) { defectRuns.insert(run.id) }
                let executed = rows.filter { $0.status != .skipped }.count
                let failing = rows.filter { $0.status.isFailing }.count
                if policy.isInfrastructureFailure(executed: executed, failed: failing) { continue }
                for r in rows {
                    guard let outcome = FlakyOutcome(status: r.status, retried: r.retried) else { continue }
                    windows["\(r.caseID)|\(run.branch)", default: FlakyHistory()].append(outcome, runID: run.id)
                }
            }

            // Compare with what the roll-ups hold.
            let stored = try await shard.run { connection in
                var caseRows: [String: Totals] = [:]
                for try await row in try await connection.query(
                    """
                    SELECT case_id, runs, passed, failed, broken, skipped, flaky, total_duration_ms, last_status
                    FROM case_stats WHERE workspace_id = \(ws.id)
                    """, logger: logger
                ).decode((String, Int, Int, Int, Int, Int, Int, Int64, String).self) {
                    caseRows[row.0] = Totals(runs: row.1, passed: row.2, failed: row.3, broken: row.4, skipped: row.5, flaky: row.6, duration: row.7, last: row.8)
                }
                var dailyRows: [String: [Int64]] = [:]
                for try await row in try await connection.query(
                    """
                    SELECT branch || '|' || to_char(day, 'YYYY-MM-DD'), runs::int8, passed::int8, failed::int8, broken::int8,
                           skipped::int8, flaky::int8, duration_ms FROM project_daily WHERE workspace_id = \(ws.id)
                    """, logger: logger
                ).decode((String, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self) {
                    dailyRows[row.0] = [row.1, row.2, row.3, row.4, row.5, row.6, row.7]
                }
                var clusterRows: [String: (runs: Int, occurrences: Int)] = [:]
                for try await (fingerprint, runs, occurrences) in try await connection.query(
                    "SELECT fingerprint, runs, occurrences FROM failure_groups WHERE workspace_id = \(ws.id)", logger: logger
                ).decode((String, Int, Int).self) {
                    clusterRows[fingerprint] = (runs, occurrences)
                }
                var affected: [String: Int] = [:]
                for try await (fingerprint, count) in try await connection.query(
                    "SELECT fingerprint, affected_cases FROM failure_groups WHERE workspace_id = \(ws.id)", logger: logger
                ).decode((String, Int).self) {
                    affected[fingerprint] = count
                }
                // Each cluster's five most recent cases, as the roll-up keeps them, against the top five of its pairs.
                var recentMismatches: [String] = []
                for try await fingerprint in try await connection.query(
                    """
                    SELECT g.fingerprint FROM failure_groups g
                    \(unescaped: clusterTopFive)
                    WHERE g.workspace_id = \(ws.id) AND (g.recent_cases IS DISTINCT FROM top.ids OR g.recent_seen IS DISTINCT FROM top.ats)
                    """, logger: logger
                ).decode(String.self) {
                    recentMismatches.append(fingerprint)
                }
                var perCase: [String: Int] = [:]
                for try await (key, occurrences) in try await connection.query(
                    "SELECT fingerprint || '|' || case_id, occurrences FROM failure_group_cases WHERE workspace_id = \(ws.id)", logger: logger
                ).decode((String, Int).self) {
                    perCase[key] = occurrences
                }
                var windowRows: [String: (String, Bool, Double)] = [:]
                for try await (caseID, branch, outcomes, flaky, score) in try await connection.query(
                    "SELECT case_id, branch, outcomes, is_flaky, score FROM case_windows WHERE workspace_id = \(ws.id)", logger: logger
                ).decode((String, String, String, Bool, Double).self) {
                    windowRows["\(caseID)|\(branch)"] = (outcomes, flaky, score)
                }
                var flakyCases = Set<String>()
                for try await caseID in try await connection.query(
                    "SELECT case_id FROM case_stats WHERE workspace_id = \(ws.id) AND is_flaky", logger: logger
                ).decode(String.self) {
                    flakyCases.insert(caseID)
                }
                return (caseRows, dailyRows, clusterRows, windowRows, flakyCases, affected, perCase, recentMismatches)
            }
            #expect(stored.0 == cases)
            #expect(stored.1 == daily)
            #expect(stored.2.mapValues { [$0.runs, $0.occurrences] } == clusters.mapValues { [$0.runs, $0.occurrences] })
            #expect(stored.3.mapValues(\.0) == windows.mapValues(\.outcomes))
            #expect(stored.6 == clusterCases)
            let expectedAffected = Dictionary(grouping: clusterCases.keys, by: { String($0.split(separator: "|")[0]) }).mapValues(\.count)
            #expect(stored.5 == expectedAffected)
            #expect(stored.7.isEmpty, "clusters whose recent cases are not their pairs' top five: \(stored.7)")
            for (key, history) in windows {
                let verdict = history.verdict(policy)
                #expect(stored.3[key]?.1 == verdict.isFlaky && stored.3[key].map { abs($0.2 - verdict.score) < 1e-12 } == true, "\(key)")
            }
            let expectedFlaky = Set(windows.filter { $0.value.verdict(policy).isFlaky }.keys.map { String($0.split(separator: "|")[0]) })
            #expect(stored.4 == expectedFlaky)
            #expect(!expectedFlaky.isEmpty, "the generator makes some cases flaky")
            // The infrastructure run is in the totals but in no window.
            #expect(windows.values.allSatisfy { !$0.outcomes.isEmpty })
            #expect(cases.values.allSatisfy { $0.runs == history.count })
            let defect = try await admin.get(defectPath)
            #expect(defect.object["affectedRuns"] as? Int == defectRuns.count)
            let stats = try #require(try await admin.get("/v1/projects").array.first?["stats"] as? [String: Any])
            #expect(stats["flakyCount"] as? Int == expectedFlaky.count)
        }
    }
}
