import Foundation
import KaizenTestSupport
import Testing

/// Sharded runs over HTTP against PostgreSQL: parts of one build assembled into one run whose regression and
/// gate are computed once, over the union; re-sent shards replay, conflicting ones are refused; a run whose
/// shards stop coming closes as partial; 32 shards at once through two tokens lose and duplicate nothing.
@Suite struct ShardedRunTests {
    static func shard(_ index: Int, of total: Int, id: String = "build-7", branch: String = "main", cases: [[String: Any]])
        -> [String: Any]
    {
        var doc = runDocument(externalRunId: id, branch: branch, cases: cases)
        doc["shard"] = ["index": index, "total": total]
        return doc
    }

    @Test func shardsAssembleIntoOneRunWithOneVerdict() async throws {
        try await withServer { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let base = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(
                    externalRunId: "base",
                    cases: [testCase("a", "passed"), testCase("b", "passed"), testCase("c", "failed"), testCase("d", "passed")]))
            base.expect(200)
            try await admin.put("/v1/projects/web/gate", json: ["rules": [["rule": "maxFailures", "limit": 0]]]).expect(200)

            // The first part opens the run: no verdict yet, the totals so far.
            let first = try await admin.post(
                "/v1/ingest/kensho/finalize", json: Self.shard(0, of: 3, cases: [testCase("a", "passed"), testCase("b", "failed"), testCase("e", "passed")]))
            #expect(first.status == 200, "\(first.text)")
            #expect(first.object["status"] as? String == "open")
            #expect(first.object["shards"] as? [String: Int] == ["total": 3, "received": 1])
            #expect((first.object["gate"] as? [String: Any])?["status"] as? String == "none")
            #expect((first.object["totals"] as? [String: Int])?["failed"] == 1)
            let runID = try #require(first.object["internalRunId"] as? String)

            // Re-sent: replayed. Other results under the same index: 409, pointing at it.
            let again = try await admin.post(
                "/v1/ingest/kensho/finalize", json: Self.shard(0, of: 3, cases: [testCase("a", "passed"), testCase("b", "failed"), testCase("e", "passed")]))
            #expect(again.status == 200 && again.object["replayed"] as? Bool == true && again.object["internalRunId"] as? String == runID)
            let other = try await admin.post("/v1/ingest/kensho/finalize", json: Self.shard(0, of: 3, cases: [testCase("a", "failed")]))
            #expect(other.status == 409 && other.errorDetails?["pointer"] as? String == "/shard/index", "\(other.text)")

            // Bad parts: a total that changed, another branch, an index past the total, too many shards.
            let changed = try await admin.post("/v1/ingest/kensho/finalize", json: Self.shard(1, of: 4, cases: [testCase("x", "passed")]))
            #expect(changed.status == 422 && changed.errorPointers == ["/shard/total"], "\(changed.text)")
            let moved = try await admin.post(
                "/v1/ingest/kensho/finalize", json: Self.shard(1, of: 3, branch: "feature/x", cases: [testCase("x", "passed")]))
            #expect(moved.status == 422 && moved.errorPointers == ["/branch"], "\(moved.text)")
            let past = try await admin.post("/v1/ingest/kensho/finalize", json: Self.shard(3, of: 3, cases: [testCase("x", "passed")]))
            #expect(past.status == 422 && past.errorPointers == ["/shard/index"], "\(past.text)")
            let many = try await admin.post("/v1/ingest/kensho/finalize", json: Self.shard(0, of: 1_001, id: "other", cases: []))
            #expect(many.status == 422 && many.errorPointers == ["/shard/total"], "\(many.text)")
            var missing = Self.shard(0, of: 3, cases: [])
            missing["shard"] = ["total": 3]
            let noIndex = try await admin.post("/v1/ingest/kensho/finalize", json: missing)
            #expect(noIndex.status == 422 && noIndex.errorPointers == ["/shard/index"], "\(noIndex.text)")
            // A whole document under a sharded run's id is not a re-push of it.
            let whole = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "build-7", cases: []))
            #expect(whole.status == 409 && whole.errorDetails?["pointer"] as? String == "/shard", "\(whole.text)")

            // Nothing of the refused parts was written; the open run is readable but in no history yet.
            let open = try await admin.get("/v1/runs/\(runID)")
            #expect(open.object["status"] as? String == "open" && open.object["shards"] as? [String: Int] == ["total": 3, "received": 1])
            #expect((open.object["totals"] as? [String: Int])?["passed"] == 2)
            let listed = try await admin.get("/v1/projects/web/runs").object["items"] as? [[String: Any]] ?? []
            #expect(listed.compactMap { $0["id"] as? String } == [try #require(base.object["internalRunId"] as? String)])

            // The second part reports b again (passing: a retry within the run), c fixed and d broken.
            let second = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: Self.shard(1, of: 3, cases: [testCase("b", "passed"), testCase("c", "passed"), testCase("d", "failed")]))
            #expect(second.object["status"] as? String == "open" && second.object["shards"] as? [String: Int] == ["total": 3, "received": 2])

            // The last part closes the run; its finalize answers the verdict over all three.
            let last = try await admin.post("/v1/ingest/kensho/finalize", json: Self.shard(2, of: 3, cases: [testCase("f", "skipped")]))
            #expect(last.status == 200, "\(last.text)")
            #expect(last.object["status"] as? String == "closed" && last.object["replayed"] as? Bool == false)
            #expect(last.object["shards"] as? [String: Int] == ["total": 3, "received": 3])
            let regression = try #require(last.object["regression"] as? [String: Any])
            #expect(regression["newFailures"] as? Int == 1 && regression["fixed"] as? Int == 1 && regression["stillFailing"] as? Int == 0)
            #expect(last.object["totals"] as? [String: Int] == ["passed": 4, "failed": 1, "skipped": 1, "broken": 0, "flaky": 1])
            let gate = try #require(last.object["gate"] as? [String: Any])
            #expect(gate["status"] as? String == "failed")
            #expect((gate["rules"] as? [[String: Any]])?.first?["actual"] as? Double == 1)

            // Each case once; b's two results are one flaky case of two attempts, its final result the later one.
            let cases = try await admin.get("/v1/runs/\(runID)/cases").object["items"] as? [[String: Any]] ?? []
            #expect(cases.compactMap { $0["name"] as? String }.sorted() == ["a", "b", "c", "d", "e", "f"])
            let b = try #require(cases.first { $0["name"] as? String == "b" })
            #expect(b["status"] as? String == "passed" && b["flaky"] as? Bool == true && b["attempts"] as? Int == 2, "\(b)")
            let d = try #require(cases.first { $0["name"] as? String == "d" })
            #expect(d["regression"] as? String == "new_failure")

            // Any shard re-sent now replays the closed run's verdict.
            let late = try await admin.post("/v1/ingest/kensho/finalize", json: Self.shard(2, of: 3, cases: [testCase("f", "skipped")]))
            #expect(late.object["replayed"] as? Bool == true && late.object["status"] as? String == "closed")
            #expect((late.object["gate"] as? [String: Any])?["status"] as? String == "failed")
            let closed = try await admin.get("/v1/runs/\(runID)")
            #expect(closed.object["status"] as? String == "closed")
            let runs = try await admin.get("/v1/projects/web/runs").object["items"] as? [[String: Any]] ?? []
            #expect(runs.first?["id"] as? String == runID && runs.count == 2)
            let events = try await admin.get("/v1/projects/web/events?kind=run.gate_failed").object["items"] as? [[String: Any]] ?? []
            #expect(events.count == 1 && events.first?["subjectId"] as? String == runID)

            // The next run's baseline is the assembled one: d still failing, b passing.
            try await waitForRollUps(admin, runs: 2)
            let next = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "after", cases: [testCase("b", "passed"), testCase("d", "failed")]))
            let nextRegression = try #require(next.object["regression"] as? [String: Any])
            #expect(nextRegression["stillFailing"] as? Int == 1 && nextRegression["newFailures"] as? Int == 0, "\(next.text)")
            #expect((nextRegression["baseline"] as? [String: Any])?["id"] as? String == runID)
        }
    }

    /// A node that stored some of the shards and then restarted (or another node) holds none of them in memory:
    /// the close reads the run back from storage and comes to the same verdict.
    @Test func shardsStoredBeforeARestartAreReadBack() async throws {
        let first = try await TestServer.start()
        let admin = APIClient(baseURL: first.baseURL, token: first.adminToken)
        try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
        try await admin.post(
            "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "base", cases: [testCase("a", "passed"), testCase("b", "passed")])
        ).expect(200)
        try await admin.post("/v1/ingest/kensho/finalize", json: Self.shard(0, of: 2, cases: [testCase("a", "failed"), testCase("b", "failed")]))
            .expect(200)
        let server = try await first.restart()
        let again = APIClient(baseURL: server.baseURL, token: server.adminToken)
        do {
            try await Self.closesFromStorage(again)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    static func closesFromStorage(_ again: APIClient) async throws {
        let closed = try await again.post(
            "/v1/ingest/kensho/finalize", json: Self.shard(1, of: 2, cases: [testCase("b", "passed"), testCase("c", "passed")]))
        #expect(closed.object["status"] as? String == "closed", "\(closed.text)")
        #expect(closed.object["totals"] as? [String: Int] == ["passed": 2, "failed": 1, "skipped": 0, "broken": 0, "flaky": 1])
        #expect((closed.object["regression"] as? [String: Any])?["newFailures"] as? Int == 1)
        let runID = try #require(closed.object["internalRunId"] as? String)
        let cases = try await again.get("/v1/runs/\(runID)/cases").object["items"] as? [[String: Any]] ?? []
        let b = try #require(cases.first { $0["name"] as? String == "b" })
        #expect(cases.count == 3 && b["flaky"] as? Bool == true && b["attempts"] as? Int == 2)
        let a = try #require(cases.first { $0["name"] as? String == "a" })
        #expect(a["regression"] as? String == "new_failure")
    }

    @Test func aRunWhoseShardsStopComingClosesAsPartial() async throws {
        try await withServer(configure: { $0.shardTimeoutSeconds = 1 }) { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let first = try await admin.post(
                "/v1/ingest/kensho/finalize", json: Self.shard(0, of: 2, cases: [testCase("a", "passed"), testCase("b", "failed")]))
            #expect(first.object["status"] as? String == "open")
            let runID = try #require(first.object["internalRunId"] as? String)
            // The close-check job runs once the second shard is a second late.
            try await waitUntil("the run is closed as partial") {
                try await admin.get("/v1/runs/\(runID)").object["status"] as? String == "partial"
            }
            let run = try await admin.get("/v1/runs/\(runID)")
            #expect(run.object["shards"] as? [String: Int] == ["total": 2, "received": 1])
            #expect((run.object["regression"] as? [String: Any])?["newFailures"] as? Int == 1)
            // It is in the project's history and rolled up like any run (the close check was the first job done).
            try await waitForRollUps(admin, runs: 2)
            let runs = try await admin.get("/v1/projects/web/runs").object["items"] as? [[String: Any]] ?? []
            #expect(runs.compactMap { $0["id"] as? String } == [runID])
            // The shard that comes too late is refused, and says why.
            let late = try await admin.post("/v1/ingest/kensho/finalize", json: Self.shard(1, of: 2, cases: [testCase("c", "passed")]))
            #expect(late.status == 409 && (late.errorMessage ?? "").contains("closed (partial)"), "\(late.text)")
        }
    }

    /// 32 shards finalizing at once through two workspace tokens: exactly the union, one run, one regression.
    @Test func thirtyTwoShardsAtOnceMakeExactlyOneRun() async throws {
        try await withServer { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let tokens = [try await mint(admin, role: "member"), try await mint(admin, role: "member")]
            let shards = 32, perShard = 150
            // The baseline fails every tenth case; each shard fails every seventh of its own.
            var baseline: [[String: Any]] = []
            for index in 0..<(shards * perShard) { baseline.append(testCase("t\(index)", index % 10 == 0 ? "failed" : "passed")) }
            try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "base", cases: baseline)).expect(200)
            let replies = try await withThrowingTaskGroup(of: (Int, APIClient.Reply).self) { group in
                for shard in 0..<shards {
                    let client = tokens[shard % 2]
                    group.addTask {
                        var cases: [[String: Any]] = []
                        for i in 0..<perShard {
                            let index = shard * perShard + i
                            cases.append(testCase("t\(index)", i % 7 == 0 ? "failed" : "passed"))
                        }
                        // Each pair of shards also reports one new case (a retry across jobs), written at once by both.
                        cases.append(testCase("shared-\(shard / 2)", "passed"))
                        let reply = try await client.post("/v1/ingest/kensho/finalize", json: Self.shard(shard, of: shards, cases: cases))
                        #expect(reply.status == 200, "\(reply.text)")
                        return (shard, reply)
                    }
                }
                var out: [(Int, APIClient.Reply)] = []
                for try await reply in group { out.append(reply) }
                return out
            }.map { ($0.0, $0.1.object) }
            let closers = replies.filter { $0.1["status"] as? String == "closed" }
            #expect(closers.count == 1, "exactly one finalize closes the run")
            #expect(replies.filter { $0.1["status"] as? String == "open" }.count == shards - 1)
            #expect(Set(replies.compactMap { $0.1["internalRunId"] as? String }).count == 1)
            let closed = try #require(closers.first?.1)
            // The expected regression, computed here from the same rule.
            var expected = (newFailures: 0, fixed: 0, stillFailing: 0), failing = 0
            for index in 0..<(shards * perShard) {
                let now = (index % perShard) % 7 == 0, before = index % 10 == 0
                if now { failing += 1 }
                if now && before { expected.stillFailing += 1 } else if now { expected.newFailures += 1 } else if before { expected.fixed += 1 }
            }
            let totals = try #require(closed["totals"] as? [String: Int])
            #expect(totals["passed"] == shards * perShard - failing + shards / 2 && totals["failed"] == failing)
            let regression = try #require(closed["regression"] as? [String: Any])
            #expect(regression["newFailures"] as? Int == expected.newFailures)
            #expect(regression["fixed"] as? Int == expected.fixed)
            #expect(regression["stillFailing"] as? Int == expected.stillFailing)
            // Every case exactly once, read back page by page.
            let runID = try #require(closed["internalRunId"] as? String)
            var names: [String] = [], cursor: String?
            repeat {
                let page = try await admin.get("/v1/runs/\(runID)/cases?limit=1000" + (cursor.map { "&cursor=\($0)" } ?? ""))
                names += (page.object["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                cursor = page.object["nextCursor"] as? String
            } while cursor != nil
            #expect(names.count == shards * perShard + shards / 2 && Set(names).count == names.count)
            let shared = try await admin.get("/v1/runs/\(runID)/cases?q=shared-&limit=100").object["items"] as? [[String: Any]] ?? []
            #expect(shared.count == shards / 2 && shared.allSatisfy { $0["attempts"] as? Int == 2 && $0["status"] as? String == "passed" })
            let runs = try await admin.get("/v1/projects/web/runs").object["items"] as? [[String: Any]] ?? []
            #expect(runs.count == 2)
        }
    }
}
