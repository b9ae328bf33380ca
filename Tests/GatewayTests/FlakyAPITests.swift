import Foundation
import KaizenTestSupport
import Testing

/// Flaky detection over HTTP on a crafted history with known answers.
@Suite struct FlakyAPITests {
    /// Nine runs on main (one of them an infrastructure failure) and two on a feature branch.
    ///
    /// - flip: alternates fail/pass on main → flaky (score 1);
    /// - retry: passes on a retry in 3 of 8 runs → flaky (score 0.375);
    /// - broken: passes, then fails from run 4 on → not flaky (one flip);
    /// - nearly: one failure among passes (two flips) → not flaky — it would have four flips, and be
    ///   flaky, if the infrastructure-failure run counted;
    /// - ten fillers that always pass, so the infrastructure run is big enough to judge.
    static func history() -> [(branch: String, cases: [[String: Any]])] {
        var runs: [(String, [[String: Any]])] = []
        let nearly = ["passed", "passed", "failed", "passed", "passed", "passed", "passed", "passed"]
        for index in 0..<8 {
            var cases = [
                testCase("flip", index % 2 == 0 ? "failed" : "passed"),
                testCase("retry", "passed", retries: [2, 5, 7].contains(index) ? ["failed"] : []),
                testCase("broken", index >= 4 ? "failed" : "passed"),
                testCase("nearly", nearly[index]),
            ]
            cases += (0..<10).map { testCase("filler-\($0)", "passed") }
            runs.append(("main", cases))
            if index == 5 {
                // Everything fails at once: the database of the test environment was down.
                let down = ["flip", "retry", "broken", "nearly"] + (0..<10).map { "filler-\($0)" }
                runs.append(("main", down.map { testCase($0, "failed") }))
            }
        }
        runs.append(("feature", [testCase("flip", "passed")]))
        runs.append(("feature", [testCase("flip", "passed")]))
        return runs
    }

    @Test func flipFloppingIsFlakyAndBreakageIsNot() async throws {
        try await withServer(configure: { $0.finalizeQuota.perMinute = 60_000 }) { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let history = Self.history()
            for (index, run) in history.enumerated() {
                let reply = try await admin.post(
                    "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r\(index)", branch: run.branch, cases: run.cases))
                #expect(reply.status == 200, "\(reply.text)")
            }
            try await waitForRollUps(admin, runs: history.count)

            let flaky = try await admin.get("/v1/projects/web/flaky")
            #expect(flaky.status == 200, "\(flaky.text)")
            let items = flaky.object["items"] as? [[String: Any]] ?? []
            #expect(items.map { $0["name"] as? String } == ["flip", "retry"])
            let flip = try #require(items.first)
            #expect(flip["score"] as? Double == 1)
            #expect(flip["flips"] as? Int == 7 && flip["results"] as? Int == 8)
            #expect(flip["branch"] as? String == "main")
            #expect((flip["evidenceRunIds"] as? [String])?.count == 7)
            #expect(flip["lastFlipAt"] is String && flip["flakySince"] is String)
            let retry = try #require(items.last)
            #expect(retry["retryPasses"] as? Int == 3 && retry["flips"] as? Int == 0)
            #expect((retry["score"] as? Double).map { abs($0 - 0.375) < 1e-9 } == true)
            #expect((flaky.object["policy"] as? [String: Any])?["window"] as? Int == 30)

            // The inventory and the project stats agree.
            let cases = try await admin.get("/v1/projects/web/cases?flaky=true").object["items"] as? [[String: Any]] ?? []
            #expect(Set(cases.compactMap { $0["name"] as? String }) == ["flip", "retry"])
            #expect(cases.allSatisfy { $0["isFlaky"] as? Bool == true })
            let project = try #require(try await admin.get("/v1/projects").array.first)
            #expect((project["stats"] as? [String: Any])?["flakyCount"] as? Int == 2)

            // Each case became flaky once, however many runs followed.
            let events = try await admin.get("/v1/projects/web/events?kind=flaky.detected")
            #expect(events.status == 200, "\(events.text)")
            let detected = events.object["items"] as? [[String: Any]] ?? []
            #expect(detected.count == 2)
            let subjects = Set(detected.compactMap { $0["subjectId"] as? String })
            #expect(subjects == Set(items.compactMap { $0["caseId"] as? String }))
            #expect(detected.allSatisfy { ($0["payload"] as? [String: Any])?["branch"] as? String == "main" })

            // Pages: one at a time, in score order.
            let first = try await admin.get("/v1/projects/web/flaky?limit=1")
            let cursor = try #require(first.object["nextCursor"] as? String)
            let second = try await admin.get("/v1/projects/web/flaky?limit=1&cursor=\(cursor)")
            #expect((second.object["items"] as? [[String: Any]])?.first?["name"] as? String == "retry")
            #expect(second.object["nextCursor"] is NSNull)
        }
    }

    @Test func thePolicyIsPerProjectValidatedAndRescoresAtOnce() async throws {
        try await withServer(configure: { $0.finalizeQuota.perMinute = 60_000 }) { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let history = Self.history()
            for (index, run) in history.enumerated() {
                #expect(try await admin.post(
                    "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r\(index)", branch: run.branch, cases: run.cases)).status == 200)
            }
            try await waitForRollUps(admin, runs: history.count)

            let initial = try await admin.get("/v1/projects/web/flaky-policy")
            #expect(initial.object["isDefault"] as? Bool == true && initial.object["updatedBy"] is NSNull)

            var policy: [String: Any] = ["window": 30, "threshold": 0.2, "minResults": 5, "minFlips": 8, "infraFailureRatio": 0.5, "infraMinCases": 10]
            let set = try await admin.put("/v1/projects/web/flaky-policy", json: policy)
            #expect(set.status == 200, "\(set.text)")
            #expect(set.object["isDefault"] as? Bool == false && set.object["updatedBy"] is String)
            // Asking for 8 flips, the flip-flopping case (7) no longer qualifies; passes on a retry still do.
            let names = (try await admin.get("/v1/projects/web/flaky").object["items"] as? [[String: Any]] ?? []).map { $0["name"] as? String }
            #expect(names == ["retry"])
            #expect((try await admin.get("/v1/projects").array.first?["stats"] as? [String: Any])?["flakyCount"] as? Int == 1)

            policy["window"] = 1
            policy["threshold"] = 2
            let bad = try await admin.put("/v1/projects/web/flaky-policy", json: policy)
            #expect(bad.status == 422)
            let pointers = ((bad.object["error"] as? [String: Any])?["details"] as? [String: Any])?["errors"] as? [[String: Any]] ?? []
            #expect(pointers.compactMap { $0["pointer"] as? String } == ["/window", "/threshold", "/minResults", "/minFlips"])
            let partial = try await admin.put("/v1/projects/web/flaky-policy", json: ["window": 10])
            #expect(partial.status == 400 || partial.status == 422)
            #expect((partial.object["error"] as? [String: Any])?["code"] is String)

            let viewer = try await mint(admin, role: "viewer")
            policy["window"] = 30
            policy["threshold"] = 0.2
            #expect(try await viewer.put("/v1/projects/web/flaky-policy", json: policy).status == 403)
            #expect(try await viewer.get("/v1/projects/web/flaky-policy").status == 200)
            #expect(try await admin.get("/v1/projects/nope/flaky").status == 404)
        }
    }

    /// A case that passed and failed on the same commit (a re-run) carries that evidence at once, beside its
    /// score; a case failing on both, or passing and failing on different commits, does not.
    @Test func passingAndFailingOnOneCommitIsEvidence() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            func push(_ id: String, commit: String, _ cases: [[String: Any]]) async throws -> String {
                var document = runDocument(externalRunId: id, cases: cases)
                document["commit"] = commit
                let reply = try await admin.post("/v1/ingest/kensho/finalize", json: document)
                #expect(reply.status == 200, "\(reply.text)")
                return try #require(reply.object["internalRunId"] as? String)
            }
            let first = try await push("build-1", commit: "c0ffee1", [testCase("racy", "passed"), testCase("down", "failed"), testCase("moved", "passed")])
            let rerun = try await push("build-1-retry", commit: "c0ffee1", [testCase("racy", "failed"), testCase("down", "failed"), testCase("moved", "passed")])
            _ = try await push("build-2", commit: "beef002", [testCase("racy", "passed"), testCase("down", "failed"), testCase("moved", "failed")])
            try await waitForRollUps(admin, runs: 3)
            let cases = try await admin.get("/v1/projects/web/cases").object["items"] as? [[String: Any]] ?? []
            let ids = Dictionary(uniqueKeysWithValues: cases.compactMap { item in
                (item["name"] as? String).flatMap { name in (item["id"] as? String).map { (name, $0) } }
            })
            let racy = try await admin.get("/v1/cases/\(try #require(ids["racy"]))").object
            let evidence = try #require(racy["sameCommit"] as? [String: Any], "\(racy)")
            #expect(evidence["commit"] as? String == "c0ffee1")
            #expect(evidence["passedRunId"] as? String == first && evidence["failedRunId"] as? String == rerun)
            for name in ["down", "moved"] {
                let other = try await admin.get("/v1/cases/\(try #require(ids[name]))").object
                #expect(other["sameCommit"] == nil, "\(name): \(other)")
            }
            let page = try await admin.get("/cases/\(try #require(ids["racy"]))")
            #expect(page.text.contains("passed and failed on <code>c0ffee1</code>"))
        }
    }

}
