import AsyncHTTPClient
import Domains
import Foundation
import Logging
import PostgresNIO
import Storage

/// Scenario 6: months of history — `runs` × `cases` case results (10 million by default) in one
/// project — then the intelligence endpoints, which read roll-ups, timed against two limits measured
/// in the same run: the server's floor (`GET /healthz`, no database) and the same kind of answer
/// computed by scanning the raw results.
///
/// The history is seeded in bulk with SQL (inventory, runs over the last 89 days, results with
/// flip-flopping, broken-since-a-commit and infrastructure-failure patterns, and the roll-up tables
/// computed set-wise with the roll-up's definitions); flakiness is then scored by the server's own
/// code path (`PUT …/flaky-policy` rescores every window), and a few runs are pushed through the API
/// on top, so their incremental roll-up is measured at this scale too.
struct HistoryScenario {
    let runs: Int
    let cases: Int
    /// Logs the plan of every roll-up statement (auto_explain, with ANALYZE and BUFFERS) of the pushes
    /// on top, and writes them to `explainPath`.
    var explain = false
    var explainPath = "kaizen-load-rollup-plans.txt"
    let pushes = 3
    let samples = 40

    func run(_ environment: LoadEnvironment, findings: Findings) async throws {
        findings.say("\n## Intelligence reads over \(runs * cases) case results (\(runs) runs × \(cases) cases, one project)")
        // auto_explain for the database's sessions: a plan is logged for every statement over 1 ms (the
        // seed's too, which costs it some instrumentation time; only the pushes' plans are kept).
        let databaseSettings = explain
            ? ["session_preload_libraries": "auto_explain", "auto_explain.log_min_duration": "1ms", "auto_explain.log_analyze": "on",
               "auto_explain.log_buffers": "on", "auto_explain.log_nested_statements": "on"]
            : [:]
        let settings = ["KAIZEN_FINALIZE_QUOTA": "100000"]
        try await KaizenProcess.with(environment, name: "history", settings: settings, databaseSettings: databaseSettings) { server in
            try await measure(server, environment, findings)
        }
    }

    func measure(_ server: KaizenProcess, _ environment: LoadEnvironment, _ findings: Findings) async throws {
        let tenants = try await Tenants.open(server, logger: environment.logger)
        defer { tenants.close() }
        let client = makeLoadClient()
        defer { Task { try? await client.shutdown() } }
        let api = Caller(client: client, base: server.plaintextURL, token: server.token)
        let created = try await api.post("/v1/projects", json: ["slug": "web", "name": "Web"])
        guard created.status == 201, let projectID = created.object["id"] as? String else {
            throw HarnessError("project: \(created.status) \(created.text)")
        }
        guard let workspace = try await tenants.cluster.catalog.workspace(slug: "default") else {
            throw HarnessError("no default workspace")
        }
        let store = HistoryStore(server: try tenants.cluster.server(forShard: workspace.shardID), workspaceID: workspace.id)

        var started = now()
        try await seed(store, workspaceID: workspace.id, projectID: projectID, logger: environment.logger)
        let seeded = now() - started
        let size = try await store.server.run { connection in
            try await connection.query(
                "SELECT pg_size_pretty(pg_total_relation_size('case_results'))", logger: environment.logger
            ).collect().first?.decode(String.self) ?? "?"
        }
        findings.say(String(format: "- seeded %d results in %.0f s (case_results with its indexes: %@)", runs * cases, seeded, size))

        started = now()
        let policy = try await api.send(
            .PUT, "/v1/projects/web/flaky-policy",
            body: try JSONSerialization.data(withJSONObject: [
                "window": 30, "threshold": 0.2, "minResults": 5, "minFlips": 3, "infraFailureRatio": 0.5, "infraMinCases": 10,
            ]))
        findings.check(policy.status == 200, "history: flaky policy \(policy.status) \(policy.text)")
        findings.say(String(format: "- scoring every case × branch window under the policy (server code path): %.1f s", now() - started))

        // The crafted patterns come out as designed: every 100th case flip-flops; the one after it broke
        // for good at 70 % of the history and must not be called flaky.
        var flaky: [Int] = []
        var cursor: String?
        repeat {
            let page = try await api.get("/v1/projects/web/flaky?limit=1000" + (cursor.map { "&cursor=\($0)" } ?? ""))
            flaky += (page.object["items"] as? [[String: Any]] ?? [])
                .compactMap { ($0["name"] as? String).flatMap { Int($0.dropFirst("case-".count)) } }
            cursor = page.object["nextCursor"] as? String
        } while cursor != nil
        let flakyCount = (try await api.get("/v1/projects").array.first as? [String: Any]).flatMap { ($0["stats"] as? [String: Any])?["flakyCount"] as? Int }
        let flipFloppers = Set((1...cases).filter { $0 % 100 == 0 })
        findings.say(
            "- flaky cases: \(flaky.count) (project stats say \(flakyCount ?? -1)): all \(flipFloppers.intersection(flaky).count) of the "
                + "\(flipFloppers.count) flip-flopping ones, \(flaky.filter { $0 % 100 == 1 }.count) of the broken-since-a-commit ones, and "
                + "\(flaky.filter { $0 % 100 > 1 }.count) whose random 2.5 % failures struck at least 3 times, apart, in their last 30 results")
        findings.check(flakyCount == flaky.count, "history: flakyCount \(flakyCount ?? -1) but \(flaky.count) listed")
        findings.check(flaky.allSatisfy { $0 % 100 != 1 }, "history: a case broken since a commit was called flaky")
        findings.check(flipFloppers.isSubset(of: Set(flaky)), "history: a flip-flopping case was not called flaky")

        // Runs on top, through the API: the incremental roll-up at this scale.
        let logPath = environment.root + "/pg/server.log"
        let logStart = (try? FileManager.default.attributesOfItem(atPath: logPath)[.size] as? Int) ?? 0
        var rollUps: [Double] = []
        var finalizes: [Double] = []
        for push in 0..<pushes {
            let body = Self.document(externalRunId: "api-\(push)", cases: cases, failingEvery: 37 + push)
            let sent = now()
            let reply = try await api.send(.POST, "/v1/ingest/kensho/finalize", body: body)
            finalizes.append(now() - sent)
            guard reply.status == 200, let runID = reply.object["internalRunId"] as? String else {
                throw HarnessError("push: \(reply.status) \(reply.text)")
            }
            let pushedAt = now()
            while try await !rolledUp(store, runID: runID, logger: environment.logger) {
                if now() - pushedAt > 120 { throw HarnessError("roll-up of \(runID) did not finish in 120 s") }
                try await Task.sleep(for: .milliseconds(20))
            }
            rollUps.append(now() - pushedAt)
        }
        findings.say(
            "- a \(cases)-case run pushed on top, every window full: finalize (client-side) then its roll-up "
                + "(finalize response → roll-up committed, polled every 20 ms): "
                + zip(finalizes, rollUps).map { String(format: "%.2f s then %.2f s", $0, $1) }.joined(separator: "; "))
        if explain { try keepPlans(logPath: logPath, from: logStart, findings: findings) }

        // Ids the reads need.
        let someCase = (try await api.get("/v1/projects/web/cases?limit=1&sort=-failures").object["items"] as? [[String: Any]])?
            .first?["id"] as? String ?? ""
        let lastRun = (try await api.get("/v1/projects/web/runs?limit=1").object["items"] as? [[String: Any]])?.first?["id"] as? String ?? ""
        let groups = try await api.get("/v1/projects/web/failure-groups?limit=2").object["items"] as? [[String: Any]] ?? []
        let defect = try await api.post(
            "/v1/projects/web/defects",
            json: ["title": "Cluster seen in most runs", "failureGroups": groups.compactMap { $0["fingerprint"] as? String }])
        findings.check(defect.status == 201, "history: defect \(defect.status) \(defect.text)")
        findings.say("- a defect linked to 2 clusters counts \(defect.object["affectedRuns"] as? Int ?? -1) affected runs at creation (\(String(format: "%.0f", Double(defect.micros) / 1000)) ms)")

        let endpoints: [(String, String)] = [
            ("floor: GET /healthz (no database)", "/healthz"),
            ("projects with stats", "/v1/projects"),
            ("project extended stats", "/v1/projects/web"),
            ("case inventory, first page", "/v1/projects/web/cases?limit=100"),
            ("cases by most failures", "/v1/projects/web/cases?sort=-failures&limit=100"),
            ("cases by last failure", "/v1/projects/web/cases?sort=-lastFailedAt&limit=100"),
            ("flaky cases only", "/v1/projects/web/cases?flaky=true&limit=100"),
            ("one case with windows", "/v1/cases/\(someCase)"),
            ("flaky list", "/v1/projects/web/flaky?limit=100"),
            ("failure clusters", "/v1/projects/web/failure-groups?limit=100"),
            ("run failure groups", "/v1/runs/\(lastRun)/failure-groups"),
            ("analytics passrate 90d", "/v1/projects/web/analytics?metric=passrate&window=90d"),
            ("analytics duration 30d, main", "/v1/projects/web/analytics?metric=duration&window=30d&branch=main"),
            ("defects", "/v1/projects/web/defects"),
            ("overview 90d", "/v1/overview?window=90d"),
        ]
        findings.say("\n| answer | p50 | p95 | max | status |")
        findings.say("|---|---:|---:|---:|---|")
        var floor = 0.0
        for (label, path) in endpoints {
            for _ in 0..<3 { _ = try await api.get(path) }
            var times: [Double] = []
            var statuses: Set<Int> = []
            for _ in 0..<samples {
                let reply = try await api.get(path)
                statuses.insert(reply.status)
                times.append(Double(reply.micros) / 1000)
            }
            times.sort()
            let p50 = times[times.count / 2]
            let p95 = times[Int(Double(times.count - 1) * 0.95)]
            if path == "/healthz" { floor = p50 }
            findings.say(String(format: "| %@ | %.1f ms | %.1f ms | %.1f ms | %@ |", label, p50, p95, times.last ?? 0,
                                statuses.sorted().map(String.init).joined(separator: ",")))
            findings.check(statuses == [200], "history: \(path) answered \(statuses)")
            findings.check(p95 < 100, "history: \(path) p95 \(p95) ms is not milliseconds")
        }
        findings.say(String(format: "\n- floor (same server, same client, no database): p50 %.1f ms", floor))

        // Issue 15: a page costs at most 2× the JSON that carries its data (the page's own API calls, one
        // after another as a client would make them), and the run report weighs at most 150 KB.
        let pages: [(String, String, [String])] = [
            ("project dashboard", "/projects/web", [
                "/v1/projects/web", "/v1/projects/web/analytics?metric=passrate&window=30d",
                "/v1/projects/web/analytics?metric=duration&window=30d", "/v1/projects/web/runs?limit=20",
                "/v1/projects/web/flaky?limit=10", "/v1/projects/web/failure-groups?limit=10",
                "/v1/projects/web/cases?sort=-failures&limit=200", "/v1/projects/web/defects?status=open&limit=10",
            ]),
            ("run report (\(cases)-case run)", "/runs/\(lastRun)", [
                "/v1/runs/\(lastRun)", "/v1/runs/\(lastRun)/regression?bucket=new_failure&limit=100",
                "/v1/runs/\(lastRun)/regression?bucket=still_failing&limit=100",
                "/v1/runs/\(lastRun)/regression?bucket=fixed&limit=100", "/v1/runs/\(lastRun)/failure-groups",
                "/v1/runs/\(lastRun)/cases?limit=100",
            ]),
        ]
        findings.say("\n| page | HTML p50 / p95 | its JSON p50 / p95 | HTML ÷ JSON (p50) | weight |")
        findings.say("|---|---:|---:|---:|---:|")
        for (label, page, json) in pages {
            var html: [Double] = []
            var data: [Double] = []
            var weight = 0
            for round in 0..<(samples + 3) {
                let reply = try await api.get(page)
                findings.check(reply.status == 200, "history: \(page) answered \(reply.status)")
                weight = reply.body.count
                var sum = 0.0
                for path in json {
                    let answer = try await api.get(path)
                    findings.check(answer.status == 200, "history: \(path) answered \(answer.status)")
                    sum += Double(answer.micros) / 1000
                }
                if round >= 3 {
                    html.append(Double(reply.micros) / 1000)
                    data.append(sum)
                }
            }
            html.sort()
            data.sort()
            let p95 = { (times: [Double]) in times[Int(Double(times.count - 1) * 0.95)] }
            let ratio = html[html.count / 2] / max(data[data.count / 2], 0.001)
            findings.say(String(format: "| %@ | %.1f / %.1f ms | %.1f / %.1f ms | %.2f× | %.0f KB |", label, html[html.count / 2],
                                p95(html), data[data.count / 2], p95(data), ratio, Double(weight) / 1024))
            findings.check(ratio <= 2, "history: the \(label) page costs \(ratio)× its JSON (goal ≤ 2×)")
            if page.hasPrefix("/runs/") { findings.check(weight <= 150 * 1024, "history: the run report weighs \(weight) bytes (goal ≤ 150 KB)") }
        }

        // The limit the roll-ups avoid: the same kinds of answers from the raw results.
        let scans: [(String, String)] = [
            ("pass rate over 30 days from raw results",
             """
             SELECT sum((r.status = 'passed')::int)::float8 / NULLIF(sum((r.status <> 'skipped')::int), 0)
             FROM case_results r JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
             WHERE r.workspace_id = '\(workspace.id)' AND u.project_id = '\(projectID)' AND u.created_at > now() - interval '30 days'
             """),
            ("100 most failing cases from raw results",
             """
             SELECT case_id, count(*) FROM case_results WHERE workspace_id = '\(workspace.id)' AND status IN ('failed', 'broken')
             GROUP BY case_id ORDER BY 2 DESC LIMIT 100
             """),
        ]
        for (label, sql) in scans {
            let began = now()
            _ = try await store.server.run { connection in
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: environment.logger).collect().count
            }
            findings.say(String(format: "- limit avoided: %@ by scanning — %.0f ms", label, (now() - began) * 1000))
        }
    }

    /// The statements PostgreSQL logged with their plans since `from`: written whole to `explainPath`,
    /// and the roll-up's statements summed up in the findings (time per statement, over the pushes).
    func keepPlans(logPath: String, from offset: Int, findings: Findings) throws {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: logPath))
        try handle.seek(toOffset: UInt64(offset))
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        try handle.close()
        try text.write(toFile: explainPath, atomically: true, encoding: .utf8)
        // An entry: "… LOG:  duration: 123.456 ms  plan:\n\tQuery Text: INSERT INTO case_stats …"
        var byStatement: [String: [Double]] = [:]
        var order: [String] = []
        for entry in text.components(separatedBy: "LOG:  duration: ").dropFirst() {
            guard let ms = Double(entry.prefix { $0 != " " }), let range = entry.range(of: "Query Text: ") else { continue }
            let statement = entry[range.upperBound...].prefix { $0 != "\n" }.split(separator: " ").prefix(6).joined(separator: " ")
            if byStatement[statement] == nil { order.append(statement) }
            byStatement[statement, default: []].append(ms)
        }
        findings.say("- statements over 1 ms during the pushes and their roll-ups (ms per execution; plans in `\(explainPath)`):")
        for statement in order {
            let times = byStatement[statement] ?? []
            findings.say("  - `\(statement)…`: " + times.map { String(format: "%.0f", $0) }.joined(separator: ", "))
        }
    }

    static func document(externalRunId: String, cases: Int, failingEvery: Int) -> Data {
        var items: [[String: Any]] = []
        var totals = ["passed": 0, "failed": 0, "skipped": 0, "broken": 0, "flaky": 0]
        for n in 1...cases {
            let failing = n % failingEvery == 0
            var item: [String: Any] = [
                "name": "case-\(n)", "suite": "suite-\(n / 50)", "status": failing ? "failed" : "passed", "durationMs": 40 + n % 300,
            ]
            if failing { item["error"] = ["type": "AssertionError", "message": "expected \(n % 40) got \(n)"] }
            totals[failing ? "failed" : "passed", default: 0] += 1
            items.append(item)
        }
        let doc: [String: Any] = [
            "schemaVersion": "kensho/v1", "project": ["slug": "web"], "externalRunId": externalRunId, "branch": "main",
            "totals": totals, "cases": items,
        ]
        return (try? JSONSerialization.data(withJSONObject: doc)) ?? Data()
    }

    func rolledUp(_ store: HistoryStore, runID: String, logger: Logger) async throws -> Bool {
        let ws = store.workspaceID
        return try await store.server.run { connection in
            try await connection.query(
                "SELECT rolled_up_at IS NOT NULL FROM runs WHERE workspace_id = \(ws) AND id = \(runID)", logger: logger
            ).collect().first?.decode(Bool.self) ?? false
        }
    }

    /// Inventory, runs, results and roll-ups, set-wise.
    func seed(_ store: HistoryStore, workspaceID ws: String, projectID: String, logger: Logger) async throws {
        let day: UInt64 = 86_400_000
        let start = Clock.nowMilliseconds() - 89 * day
        let step = (89 * day) / UInt64(max(1, runs))
        let caseIDs = (0..<cases).map { _ in ResourceID.make(.testCase) }
        var runIDs: [String] = []
        var times: [Int64] = []
        var branches: [String] = []
        for index in 0..<runs {
            let ms = start + UInt64(index) * step
            runIDs.append(ResourceID.make(.run, milliseconds: ms))
            times.append(Int64(ms))
            branches.append(index % 5 == 4 ? "feature-\(index % 3)" : "main")
        }
        let brokenFrom = runs * 7 / 10
        let statements: [PostgresQuery] = [
            "CREATE TEMP TABLE seed_cases (id text, n int)",
            "INSERT INTO seed_cases SELECT id, n::int FROM UNNEST(\(caseIDs)::text[]) WITH ORDINALITY AS t(id, n)",
            "CREATE TEMP TABLE seed_runs (id text, seq bigint, at timestamptz, branch text, infra boolean)",
            """
            INSERT INTO seed_runs SELECT id, n, to_timestamp(ms / 1000.0), branch, n % 200 = 100
            FROM UNNEST(\(runIDs)::text[], \(times)::int8[], \(branches)::text[]) WITH ORDINALITY AS t(id, ms, branch, n)
            """,
            """
            INSERT INTO cases (workspace_id, id, project_id, case_key, name, suite, created_at)
            SELECT \(ws), id, \(projectID), 'suite-' || (n / 50) || '::case-' || n, 'case-' || n, 'suite-' || (n / 50),
                   (SELECT min(at) FROM seed_runs)
            FROM seed_cases
            """,
            """
            INSERT INTO runs (workspace_id, id, project_id, external_run_id, branch, status, passed, failed, skipped, broken, flaky,
                              new_failures, fixed, still_failing, seq, created_at, rolled_up_at)
            SELECT \(ws), id, \(projectID), 'seed-' || seq, branch, 'closed', 0, 0, 0, 0, 0, 0, 0, 0, seq, at, now() FROM seed_runs
            """,
            // 1 % of cases flip-flop (and sometimes pass on a retry); 1 % break for good at 70 % of the
            // history; the rest fail 2.5 %, skip 3.5 % of the time; every 200th run breaks everything.
            """
            INSERT INTO case_results (workspace_id, run_id, ordinal, case_id, status, duration_ms, attempts, flaky, error_type,
                                      error_message, fingerprint)
            SELECT \(ws), r.id, c.n, c.id, s.status, 40 + (c.n % 300) + x.h % 50, CASE WHEN s.retried THEN 2 ELSE 1 END, s.retried,
                   CASE WHEN s.status IN ('failed', 'broken') THEN 'AssertionError' END,
                   CASE WHEN s.status IN ('failed', 'broken') THEN 'expected ' || (c.n % 40) || ' got ' || x.h END,
                   CASE WHEN s.status IN ('failed', 'broken') THEN left(md5('cluster-' || (c.n % 40)), 16) END
            FROM seed_runs r CROSS JOIN seed_cases c
            CROSS JOIN LATERAL (SELECT abs(hashtext(r.id || c.id)) % 1000 AS h) x
            CROSS JOIN LATERAL (SELECT
                CASE WHEN r.infra THEN 'broken'
                     WHEN c.n % 100 = 0 THEN CASE WHEN x.h < 350 THEN 'failed' ELSE 'passed' END
                     WHEN c.n % 100 = 1 THEN CASE WHEN r.seq > \(brokenFrom) THEN 'failed' ELSE 'passed' END
                     WHEN x.h < 20 THEN 'failed' WHEN x.h < 25 THEN 'broken' WHEN x.h < 60 THEN 'skipped'
                     ELSE 'passed' END AS status,
                (NOT r.infra AND ((c.n % 100 = 0 AND x.h BETWEEN 350 AND 420) OR (c.n % 100 > 1 AND x.h BETWEEN 60 AND 63))) AS retried) s
            """,
            """
            UPDATE runs u SET passed = a.p, failed = a.f, broken = a.b, skipped = a.s, flaky = a.fl
            FROM (SELECT run_id, count(*) FILTER (WHERE status = 'passed')::int AS p, count(*) FILTER (WHERE status = 'failed')::int AS f,
                         count(*) FILTER (WHERE status = 'broken')::int AS b, count(*) FILTER (WHERE status = 'skipped')::int AS s,
                         count(*) FILTER (WHERE flaky)::int AS fl
                  FROM case_results WHERE workspace_id = \(ws) GROUP BY run_id) a
            WHERE u.workspace_id = \(ws) AND u.id = a.run_id
            """,
            // The roll-ups, by the same definitions as the incremental roll-up.
            """
            INSERT INTO case_stats (workspace_id, case_id, project_id, first_seen_at, last_seen_at, last_run_id, last_status,
                                    last_failed_at, runs, passed, failed, broken, skipped, flaky, total_duration_ms)
            SELECT \(ws), r.case_id, \(projectID), min(u.created_at), max(u.created_at),
                   (array_agg(u.id ORDER BY u.seq DESC))[1], (array_agg(r.status ORDER BY u.seq DESC))[1],
                   max(u.created_at) FILTER (WHERE r.status IN ('failed', 'broken')), count(*),
                   count(*) FILTER (WHERE r.status = 'passed'), count(*) FILTER (WHERE r.status = 'failed'),
                   count(*) FILTER (WHERE r.status = 'broken'), count(*) FILTER (WHERE r.status = 'skipped'),
                   count(*) FILTER (WHERE r.flaky), sum(r.duration_ms)
            FROM case_results r JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
            WHERE r.workspace_id = \(ws) GROUP BY r.case_id
            """,
            """
            INSERT INTO project_daily (workspace_id, project_id, branch, day, runs, passed, failed, broken, skipped, flaky, duration_ms)
            SELECT \(ws), \(projectID), u.branch, (u.created_at AT TIME ZONE 'UTC')::date, count(*), sum(u.passed), sum(u.failed),
                   sum(u.broken), sum(u.skipped), sum(u.flaky), sum(d.duration)
            FROM runs u JOIN (SELECT run_id, sum(duration_ms) AS duration FROM case_results WHERE workspace_id = \(ws) GROUP BY run_id) d
                 ON d.run_id = u.id
            WHERE u.workspace_id = \(ws) GROUP BY u.branch, (u.created_at AT TIME ZONE 'UTC')::date
            """,
            """
            INSERT INTO failure_groups (workspace_id, project_id, fingerprint, error_type, sample_message, first_seen_run_id,
                                        first_seen_at, last_seen_run_id, last_seen_at, runs, occurrences)
            SELECT \(ws), \(projectID), r.fingerprint, min(r.error_type), min(r.error_message),
                   (array_agg(u.id ORDER BY u.seq))[1], min(u.created_at), (array_agg(u.id ORDER BY u.seq DESC))[1],
                   max(u.created_at), count(DISTINCT r.run_id), count(*)
            FROM case_results r JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
            WHERE r.workspace_id = \(ws) AND r.fingerprint IS NOT NULL GROUP BY r.fingerprint
            """,
            """
            INSERT INTO failure_group_cases (workspace_id, project_id, fingerprint, case_id, occurrences, last_seen_at)
            SELECT \(ws), \(projectID), r.fingerprint, r.case_id, count(*), max(u.created_at)
            FROM case_results r JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
            WHERE r.workspace_id = \(ws) AND r.fingerprint IS NOT NULL GROUP BY r.fingerprint, r.case_id
            """,
            """
            UPDATE failure_groups g SET affected_cases = c.n, recent_cases = c.ids, recent_seen = c.ats
            FROM (SELECT fingerprint, count(*)::int AS n, (array_agg(case_id ORDER BY last_seen_at DESC, case_id))[1:5] AS ids,
                         (array_agg(last_seen_at ORDER BY last_seen_at DESC, case_id))[1:5] AS ats
                  FROM failure_group_cases WHERE workspace_id = \(ws) GROUP BY fingerprint) c
            WHERE g.workspace_id = \(ws) AND g.fingerprint = c.fingerprint
            """,
            // Windows: the latest 100 outcomes per case and branch, infrastructure runs left out;
            // scored afterwards by the server (PUT flaky-policy).
            """
            INSERT INTO case_windows (workspace_id, case_id, branch, project_id, outcomes, evidence, results, flips, retry_passes,
                                      score, is_flaky, updated_at)
            SELECT \(ws), r.case_id, s.branch, \(projectID),
                   right(string_agg(CASE WHEN r.status = 'passed' THEN (CASE WHEN r.flaky THEN 'R' ELSE 'P' END) ELSE 'F' END, ''
                                    ORDER BY s.seq), \(FlakyPolicy.maxWindow)::int),
                   '{}', 0, 0, 0, 0, false, now()
            FROM case_results r JOIN seed_runs s ON s.id = r.run_id
            WHERE r.workspace_id = \(ws) AND r.status <> 'skipped' AND NOT s.infra
            GROUP BY r.case_id, s.branch
            """,
            "ANALYZE",
        ]
        try await store.server.run { connection in
            try await connection.query("SET work_mem = '256MB'", logger: logger)
            for (index, statement) in statements.enumerated() {
                do {
                    try await connection.query(statement, logger: logger)
                } catch {
                    throw HarnessError("seed statement \(index): \(String(reflecting: error))")
                }
            }
        }
    }
}

/// The shard server and workspace the history is seeded into with raw SQL (the harness's own access,
/// not the server's).
struct HistoryStore {
    let server: PhysicalServer
    let workspaceID: String
}
