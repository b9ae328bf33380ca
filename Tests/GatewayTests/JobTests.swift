import Foundation
import KaizenTestSupport
import Logging
import PostgresNIO
import Storage
import Tenancy
import Testing

@Suite struct PostIngestJobTests {
    func waitForJobs(_ admin: APIClient, until done: Int, timeout: Double = testConditionTimeout) async throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let jobs = try await admin.get("/v1/workspaces/default/jobs").array
            if jobs.filter({ $0["state"] as? String == "done" }).count >= done || Date() > deadline { return jobs }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test func rollUpsAgreeWithARecomputationFromRawResults() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            for round in 0..<5 {
                let cases = (0..<20).map { testCase("c\($0)", ($0 + round) % 4 == 0 ? "failed" : ($0 == 7 ? "skipped" : "passed")) }
                let reply = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r\(round)", cases: cases))
                #expect(reply.status == 200)
            }
            // A re-push enqueues nothing and counts nothing twice.
            let again = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "r0", cases: (0..<20).map { testCase("c\($0)", $0 % 4 == 0 ? "failed" : ($0 == 7 ? "skipped" : "passed")) }))
            #expect(again.object["replayed"] as? Bool == true)

            let jobs = try await waitForJobs(admin, until: 5)
            #expect(jobs.count == 5)
            #expect(jobs.allSatisfy { $0["state"] as? String == "done" && $0["kind"] as? String == "run.rollup" })

            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let repos = try server.cluster.repositories(workspaceID: ws.id, shardID: ws.shardID)
            let shard = try server.cluster.server(forShard: ws.shardID)
            // A retried job finds the run already rolled up.
            let runs = try await repos.runs.runs(projectID: try #require(try await server.registry.withWorkspace(
                .init(workspaceID: ws.id, workspaceSlug: ws.slug, shardID: ws.shardID, role: .admin)) { try await $0.project(slug: "web") }).id,
                branch: nil, beforeSeq: nil, limit: 10)
            #expect(try await repos.intelligence.rollUp(runID: try #require(runs.first).id, inOrder: true) == .alreadyRolledUp)

            let logger = Logger(label: "t")
            let mismatches = try await shard.run { connection in
                // Every case's roll-up equals what its raw results say.
                try await connection.query(
                    """
                    SELECT count(*)::int FROM case_stats s
                    JOIN (SELECT r.case_id, count(*) AS runs, sum((r.status = 'passed')::int) AS passed,
                                 sum((r.status = 'failed')::int) AS failed, sum((r.status = 'skipped')::int) AS skipped,
                                 sum(r.duration_ms) AS duration
                          FROM case_results r WHERE r.workspace_id = \(ws.id) GROUP BY r.case_id) raw ON raw.case_id = s.case_id
                    WHERE s.workspace_id = \(ws.id)
                      AND (s.runs <> raw.runs OR s.passed <> raw.passed OR s.failed <> raw.failed OR s.skipped <> raw.skipped
                           OR s.total_duration_ms <> raw.duration)
                    """, logger: logger
                ).collect().first?.decode(Int.self) ?? -1
            }
            #expect(mismatches == 0)
            let (statsRows, dailyRuns, lastStatus) = try await shard.run { connection in
                let stats = try await connection.query("SELECT count(*)::int FROM case_stats WHERE workspace_id = \(ws.id)", logger: logger)
                    .collect().first?.decode(Int.self) ?? -1
                let daily = try await connection.query(
                    "SELECT sum(runs)::int, sum(failed)::int FROM project_daily WHERE workspace_id = \(ws.id)", logger: logger
                ).collect().first?.decode((Int, Int).self) ?? (-1, -1)
                let last = try await connection.query(
                    """
                    SELECT s.last_status FROM case_stats s JOIN cases c ON c.workspace_id = s.workspace_id AND c.id = s.case_id
                    WHERE s.workspace_id = \(ws.id) AND c.name = 'c0'
                    """, logger: logger
                ).collect().first?.decode(String.self) ?? ""
                return (stats, daily, last)
            }
            #expect(statsRows == 20)
            #expect(dailyRuns.0 == 5)
            #expect(dailyRuns.1 == 25)  // 5 failing cases in each of 5 runs
            #expect(lastStatus == "failed")  // the latest run (round 4) failed c0: (0 + 4) % 4 == 0

            // Project stats come from the runs and the roll-ups.
            let listed = try #require(try await admin.get("/v1/projects").array.first)
            let stats = listed["stats"] as? [String: Any] ?? [:]
            #expect(stats["lastRunAt"] is String)
            // 5 runs of 20 cases: 25 failed, 5 skipped (c7 in 4 rounds + …), the rest passed.
            let rate = try #require(stats["passRate30d"] as? Double)
            #expect(rate > 0.7 && rate < 0.75)
            let detail = try await admin.get("/v1/projects/web")
            let extended = detail.object["extendedStats"] as? [String: Any] ?? [:]
            #expect((extended["historyRange"] as? [String: Any])?["runCount"] as? Int == 5)
            #expect((extended["historyRange"] as? [String: Any])?["firstRunAt"] is String)
            #expect((extended["topFailingSuites"] as? [[String: Any]])?.first?["suite"] as? String == "Suite")
            #expect((extended["topFailingSuites"] as? [[String: Any]])?.first?["failures"] as? Int == 25)
        }
    }

    @Test func aJobThatKeepsFailingEndsDeadWithoutBlockingOthers() async throws {
        try await withServer { server, admin in
            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let queueServer = try server.cluster.server(forShard: ws.shardID)
            try await queueServer.run { connection in
                try await connection.query(
                    """
                    INSERT INTO jobs (workspace_id, id, kind, payload, max_attempts)
                    VALUES (\(ws.id), 'job_00000000000000000000000000', 'no.such.kind', '{}', 2)
                    """, logger: Logger(label: "t"))
            }
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            #expect(try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r", cases: [testCase("a", "passed")])).status == 200)
            let deadline = Date().addingTimeInterval(testConditionTimeout)
            var dead: [[String: Any]] = []
            var done: [[String: Any]] = []
            repeat {
                try await Task.sleep(for: .milliseconds(200))
                dead = try await admin.get("/v1/workspaces/default/jobs?state=dead").array
                done = try await admin.get("/v1/workspaces/default/jobs?state=done").array
            } while (dead.isEmpty || done.isEmpty) && Date() < deadline
            #expect(done.count == 1)
            let failed = try #require(dead.first)
            #expect(failed["attempts"] as? Int == 2)
            #expect((failed["lastError"] as? String)?.contains("no.such.kind") == true)
        }
    }

    /// Roll-ups of a project wait for an earlier run whose job will be retried, but not for one whose
    /// job is dead: a poison run must not hold the project's later roll-ups back.
    @Test func aDeadRollUpDoesNotStallLaterRuns() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let queueServer = try server.cluster.server(forShard: ws.shardID)
            let logger = Logger(label: "t")
            try await onRollUp(of: "poison", do: "RAISE EXCEPTION 'this run cannot be rolled up'", on: queueServer, logger: logger)
            try await queueServer.run { connection in
                // Jobs enqueued from now on give up after their first failure.
                try await connection.query("ALTER TABLE jobs ALTER COLUMN max_attempts SET DEFAULT 1", logger: logger)
            }
            #expect(try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "poison", cases: [testCase("a", "failed")])).status == 200)
            #expect(try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "later", cases: [testCase("a", "passed")])).status == 200)
            let deadline = Date().addingTimeInterval(testConditionTimeout)
            var cases: [[String: Any]] = []
            repeat {
                try await Task.sleep(for: .milliseconds(200))
                cases = try await admin.get("/v1/projects/web/cases").object["items"] as? [[String: Any]] ?? []
            } while cases.first?["runs"] as? Int != 1 && Date() < deadline
            // Only the later run is rolled up; the poison run's job is dead with its error.
            #expect(cases.first?["runs"] as? Int == 1 && cases.first?["lastStatus"] as? String == "passed")
            let dead = try await admin.get("/v1/workspaces/default/jobs?state=dead").array
            #expect(dead.count == 1)
            #expect((dead.first?["lastError"] as? String)?.isEmpty == false)
        }
    }

    /// Roll-ups of different projects run side by side: while one project's roll-up is held up (here
    /// by a lock the test holds, as a big run would hold its lane), another project's run is rolled up.
    @Test func oneProjectsRollUpDoesNotHoldUpAnothers() async throws {
        try await withServer { server, admin in
            for slug in ["big", "small"] {
                #expect(try await admin.post("/v1/projects", json: ["slug": slug, "name": slug]).status == 201)
            }
            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let queueServer = try server.cluster.server(forShard: ws.shardID)
            let logger = Logger(label: "t")
            try await onRollUp(of: "held", do: "PERFORM pg_advisory_xact_lock(4242)", on: queueServer, logger: logger)
            // The test holds the lock on a connection of its own until it lets go.
            let letGo = AsyncStream<Void>.makeStream()
            let locked = AsyncStream<Void>.makeStream()
            let holder = Task {
                try await queueServer.run { connection in
                    try await connection.query("SELECT pg_advisory_lock(4242)", logger: logger)
                    locked.continuation.yield()
                    for await _ in letGo.stream { break }
                    try await connection.query("SELECT pg_advisory_unlock(4242)", logger: logger)
                }
            }
            for await _ in locked.stream { break }

            func rolledUp(_ externalRunId: String) async throws -> Bool {
                try await queueServer.run { connection in
                    try await connection.query(
                        "SELECT rolled_up_at IS NOT NULL FROM runs WHERE workspace_id = \(ws.id) AND external_run_id = \(externalRunId)",
                        logger: logger
                    ).collect().first?.decode(Bool.self) ?? false
                }
            }
            func started(_ externalRunId: String) async throws -> Bool {
                try await queueServer.run { connection in
                    try await connection.query(
                        """
                        SELECT count(*)::int FROM jobs j JOIN runs r ON r.workspace_id = j.workspace_id AND r.id = j.payload->>'runId'
                        WHERE j.workspace_id = \(ws.id) AND r.external_run_id = \(externalRunId) AND j.started_at IS NOT NULL
                        """, logger: logger
                    ).collect().first?.decode(Int.self) == 1
                }
            }
            #expect(try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(project: "big", externalRunId: "held", cases: [testCase("a", "failed")])).status == 200)
            // The big project's roll-up has begun and waits on the lock…
            let deadline = Date().addingTimeInterval(testConditionTimeout)
            while try await !started("held"), Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await started("held"))
            // …while the small project's run is pushed and rolled up.
            #expect(try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(project: "small", externalRunId: "quick", cases: [testCase("b", "passed")])).status == 200)
            while try await !rolledUp("quick"), Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await rolledUp("quick"))
            #expect(try await !rolledUp("held"))

            letGo.continuation.yield()
            try await holder.value
            while try await !rolledUp("held"), Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await rolledUp("held"))
        }
    }
}

/// Makes the roll-up of the run `externalRunId` run `action` (PL/pgSQL) when it marks the run rolled up:
/// a trigger on `runs`, named after the run.
func onRollUp(of externalRunId: String, do action: String, on server: PhysicalServer, logger: Logger) async throws {
    let name = "test_rollup_\(externalRunId)"
    try await server.run { connection in
        try await connection.query(
            PostgresQuery(unsafeSQL: """
                CREATE FUNCTION \(name)() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.external_run_id = '\(externalRunId)' AND NEW.rolled_up_at IS NOT NULL THEN
                        \(action);
                    END IF;
                    RETURN NEW;
                END $$
                """), logger: logger)
        try await connection.query(
            PostgresQuery(unsafeSQL: "CREATE TRIGGER \(name) BEFORE UPDATE ON runs FOR EACH ROW EXECUTE FUNCTION \(name)()"),
            logger: logger)
    }
}
