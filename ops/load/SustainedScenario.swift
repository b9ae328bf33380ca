import AsyncHTTPClient
import Foundation
import Logging
import PostgresNIO
import Storage

/// Sustained CI ingestion: `pipelines` pipelines (each its own project) push runs back to back for
/// `minutes` — as fast as the server finalizes them — while the post-ingest roll-ups run beside them.
/// Reports cases/s, the roll-up lag (finalize committed → roll-up committed, from the job's own
/// timestamps on the server) and the queue depth over time; then checks that the roll-ups agree with
/// a recomputation from the raw results.
struct SustainedScenario {
    let minutes: Double
    let pipelines: Int
    let workspaces: Int
    let cases: Int
    let sampleSeconds = 5.0

    func run(_ environment: LoadEnvironment, findings: Findings) async throws {
        findings.say(
            "\n## Sustained ingestion: \(pipelines) pipelines push \(cases)-case runs back to back for \(String(format: "%g", minutes)) min")
        let settings = ["KAIZEN_RATE_LIMIT_WORKSPACE": "1000000", "KAIZEN_FINALIZE_QUOTA": "100000"]
        try await KaizenProcess.with(environment, name: "sustained", settings: settings) { server in
            try await measure(server, environment, findings)
        }
    }

    func measure(_ server: KaizenProcess, _ environment: LoadEnvironment, _ findings: Findings) async throws {
        let logger = environment.logger
        let tenants = try await Tenants.open(server, logger: logger)
        defer { tenants.close() }
        let database = tenants.cluster.servers[0]
        let client = makeLoadClient()
        var tokens: [String] = []
        for w in 0..<workspaces { tokens.append(try await tenants.make("sustained-\(w)").token) }
        for p in 0..<pipelines {
            let caller = Caller(client: client, base: server.tlsURL, token: tokens[p % workspaces])
            let created = try await caller.post("/v1/projects", json: ["slug": "p\(p)", "name": "Pipeline \(p)"])
            guard created.status == 201 else { throw HarnessError("project p\(p): \(created.status) \(created.text)") }
        }
        let rssIdle = server.memory.rss

        let sampler = Task { () -> [(Double, Int)] in
            var samples: [(Double, Int)] = []
            let began = now()
            while !Task.isCancelled {
                if let depth = try? await Self.depth(database, logger: logger) { samples.append((now() - began, depth)) }
                try? await Task.sleep(for: .seconds(sampleSeconds))
            }
            return samples
        }
        let started = now()
        let deadline = started + minutes * 60
        let results = try await withThrowingTaskGroup(of: (Tally, Tally, Int, Int, [String]).self) { group in
            for p in 0..<pipelines {
                let caller = Caller(client: client, base: server.tlsURL, token: tokens[p % workspaces])
                let cases = self.cases
                group.addTask {
                    var generator = PipelineGenerator(project: "p\(p)", cases: cases, seed: UInt64(p + 1) * 104_729)
                    var finalize = Tally(), requests = Tally()
                    var runs = 0, pushedCases = 0
                    var problems: [String] = []
                    while now() < deadline {
                        let run = generator.next()
                        let (f, r, pushed, trouble) = try await IngestScenario.pipeline(caller, [run])
                        finalize.merge(f)
                        requests.merge(r)
                        runs += pushed.count
                        pushedCases += pushed.reduce(0) { $0 + $1.run.caseCount }
                        problems += trouble
                    }
                    return (finalize, requests, runs, pushedCases, problems)
                }
            }
            var all: [(Tally, Tally, Int, Int, [String])] = []
            for try await result in group { all.append(result) }
            return all
        }
        let elapsed = now() - started
        let depthAtEnd = try await Self.depth(database, logger: logger)
        let peak = server.memory.peak

        // Drain: the roll-ups of the last pushes.
        let drainStarted = now()
        while try await Self.depth(database, logger: logger) > 0 {
            if now() - drainStarted > 600 { throw HarnessError("the roll-up queue did not drain within 10 minutes") }
            try await Task.sleep(for: .milliseconds(200))
        }
        let drain = now() - drainStarted
        sampler.cancel()
        let samples = await sampler.value

        var finalize = Tally(), requests = Tally()
        var runs = 0, pushedCases = 0
        for (f, r, n, c, problems) in results {
            finalize.merge(f)
            requests.merge(r)
            runs += n
            pushedCases += c
            for problem in problems { findings.check(false, problem) }
        }
        findings.say(
            String(format: "- pushed %d runs, %d cases in %.0f s: %.0f cases/s; finalize latency: ", runs, pushedCases, elapsed,
                   Double(pushedCases) / elapsed) + finalize.percentiles())
        findings.say("- responses: \(requests.statusLine())")
        findings.check(requests.serverErrors == 0, "sustained: \(requests.serverErrors) responses were 5xx")

        // The lag of every roll-up, from the server's clock: the job is created in the finalize's
        // transaction and marked done right after the roll-up's transaction commits.
        let lags = try await database.run { connection in
            var lags: [Double] = []
            for try await lag in try await connection.query(
                """
                SELECT extract(epoch FROM updated_at - created_at)::float8 FROM jobs
                WHERE kind = 'run.rollup' AND state = 'done'
                """, logger: logger
            ).decode(Double.self) {
                lags.append(lag)
            }
            return lags.sorted()
        }
        func percentile(_ p: Double) -> Double { lags.isEmpty ? 0 : lags[min(lags.count - 1, Int(Double(lags.count - 1) * p))] }
        let p99 = percentile(0.99)
        findings.say(
            String(format: "- roll-up lag (finalize → rolled up) over %d runs: p50 %.2f s, p99 %.2f s, max %.2f s (goal: p99 ≤ 5 s)",
                   lags.count, percentile(0.5), p99, lags.last ?? 0))
        findings.check(lags.count == runs, "sustained: \(lags.count) roll-ups done for \(runs) runs")
        findings.check(p99 <= 5, String(format: "sustained: roll-up lag p99 %.2f s is over 5 s", p99))

        // The queue over time: it must not grow. Compared: the mean depth of the last third of the push
        // window against the first third's (after the first minute's warm-up is part of it).
        let pushing = samples.filter { $0.0 <= elapsed }
        let third = max(1, pushing.count / 3)
        let firstMean = Double(pushing.prefix(third).map(\.1).reduce(0, +)) / Double(max(1, min(third, pushing.count)))
        let lastMean = Double(pushing.suffix(third).map(\.1).reduce(0, +)) / Double(max(1, min(third, pushing.count)))
        let shown = stride(from: 0, to: pushing.count, by: max(1, pushing.count / 20)).map { pushing[$0] }
        findings.say(
            "- roll-up queue depth every \(Int(sampleSeconds)) s (shown every \(max(1, pushing.count / 20) * Int(sampleSeconds)) s): "
                + shown.map { "\($0.1)" }.joined(separator: " ")
                + String(format: "; mean %.1f in the first third, %.1f in the last; %d at the end; drained %.1f s after the last push",
                         firstMean, lastMean, depthAtEnd, drain))
        findings.check(
            lastMean <= firstMean + Double(pipelines),
            String(format: "sustained: the roll-up queue grew (mean depth %.1f → %.1f)", firstMean, lastMean))
        findings.say("- server RSS: \(megabytes(rssIdle)) idle, peak \(megabytes(peak))")

        // The roll-ups agree with the raw results after all of this.
        let disagreements = try await database.run { connection in
            var count = 0
            for try await n in try await connection.query(Self.recomputation, logger: logger).decode(Int.self) { count += n }
            return count
        }
        findings.say("- recomputation from raw results (case totals, daily series, clusters): \(disagreements) disagreement(s)")
        findings.check(disagreements == 0, "sustained: \(disagreements) roll-up rows disagree with a recomputation")
        try await client.shutdown()
    }

    static func depth(_ server: PhysicalServer, logger: Logger) async throws -> Int {
        try await server.run { connection in
            var depth = 0
            for try await n in try await connection.query(
                "SELECT count(*)::int FROM jobs WHERE kind = 'run.rollup' AND state IN ('queued', 'running')", logger: logger
            ).decode(Int.self) {
                depth = n
            }
            return depth
        }
    }

    /// Rows of `case_stats`, `project_daily` and `failure_groups` (its totals and its five most recent cases)
    /// that differ from the same figures computed from `case_results` and `runs` (every run is rolled up once
    /// the queue drained).
    static let recomputation: PostgresQuery = """
        SELECT count(*)::int FROM case_stats s
        FULL JOIN (SELECT workspace_id, case_id, count(*)::int AS runs, count(*) FILTER (WHERE status = 'passed')::int AS passed,
                          count(*) FILTER (WHERE status = 'failed')::int AS failed, count(*) FILTER (WHERE status = 'broken')::int AS broken,
                          count(*) FILTER (WHERE status = 'skipped')::int AS skipped, count(*) FILTER (WHERE flaky)::int AS flaky,
                          sum(duration_ms)::bigint AS duration
                   FROM case_results GROUP BY workspace_id, case_id) r
             ON r.workspace_id = s.workspace_id AND r.case_id = s.case_id
        WHERE (s.runs, s.passed, s.failed, s.broken, s.skipped, s.flaky, s.total_duration_ms)
              IS DISTINCT FROM (r.runs, r.passed, r.failed, r.broken, r.skipped, r.flaky, r.duration)
        UNION ALL
        SELECT count(*)::int FROM project_daily d
        FULL JOIN (SELECT u.workspace_id, u.project_id, u.branch, (u.created_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS runs,
                          sum(u.passed)::int AS passed, sum(u.failed)::int AS failed,
                          sum((SELECT COALESCE(sum(duration_ms), 0) FROM case_results r
                               WHERE r.workspace_id = u.workspace_id AND r.run_id = u.id))::bigint AS duration
                   FROM runs u GROUP BY 1, 2, 3, 4) e
             ON e.workspace_id = d.workspace_id AND e.project_id = d.project_id AND e.branch = d.branch AND e.day = d.day
        WHERE (d.runs, d.passed, d.failed, d.duration_ms) IS DISTINCT FROM (e.runs, e.passed, e.failed, e.duration)
        UNION ALL
        SELECT count(*)::int FROM failure_groups g
        FULL JOIN (SELECT r.workspace_id, u.project_id, r.fingerprint, count(DISTINCT r.run_id)::int AS runs, count(*)::int AS occurrences
                   FROM case_results r JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
                   WHERE r.fingerprint IS NOT NULL GROUP BY 1, 2, 3) e
             ON e.workspace_id = g.workspace_id AND e.project_id = g.project_id AND e.fingerprint = g.fingerprint
        WHERE (g.runs, g.occurrences) IS DISTINCT FROM (e.runs, e.occurrences)
        UNION ALL
        SELECT count(*)::int FROM failure_groups g
        CROSS JOIN LATERAL (
            SELECT array_agg(t.case_id ORDER BY t.at DESC, t.case_id) AS ids, array_agg(t.at ORDER BY t.at DESC, t.case_id) AS ats
            FROM (SELECT r.case_id, max(u.created_at) AS at
                  FROM case_results r JOIN runs u ON u.workspace_id = r.workspace_id AND u.id = r.run_id
                  WHERE r.workspace_id = g.workspace_id AND r.fingerprint = g.fingerprint AND u.project_id = g.project_id
                  GROUP BY r.case_id ORDER BY at DESC, r.case_id LIMIT 5) t) top
        WHERE g.recent_cases IS DISTINCT FROM top.ids OR g.recent_seen IS DISTINCT FROM top.ats
        """
}
