import Foundation
import KaizenTestSupport
import Testing

/// Quality gates and quarantine over HTTP: the verdict in the finalize, on the run, replayed, as an event;
/// quarantined failures forgiven; bad input refused with pointers and nothing written.
@Suite struct GateAPITests {
    static var failures: [[String: Any]] { [testCase("a", "passed"), testCase("b", "failed"), testCase("c", "failed", suite: "Checkout")] }

    @Test func theGateJudgesEveryFinalizeAndQuarantineForgives() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let none = try await admin.get("/v1/projects/web/gate")
            #expect(none.status == 200 && none.object["isDefault"] as? Bool == true)
            #expect((none.object["rules"] as? [Any])?.isEmpty == true)

            // Without a gate the verdict is `none`.
            let first = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r0", cases: [testCase("a", "passed")]))
            #expect((first.object["gate"] as? [String: Any])?["status"] as? String == "none")

            let gate: [String: Any] = ["rules": [
                ["rule": "maxFailures", "limit": 0, "branches": ["main", "release/*"]],
                ["rule": "minPassRate", "limit": 0.5],
                ["rule": "minTestsCount", "limit": 3],
                ["rule": "requiredSuites", "suites": ["Checkout", "Payments"]],
                ["rule": "maxFailures", "limit": 0, "branches": ["nightly"]],
            ]]
            let set = try await admin.put("/v1/projects/web/gate", json: gate)
            #expect(set.status == 200, "\(set.text)")
            #expect(set.object["isDefault"] as? Bool == false && (set.object["rules"] as? [Any])?.count == 5)

            let judged = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r1", cases: Self.failures))
            #expect(judged.status == 200, "\(judged.text)")
            let verdict = try #require(judged.object["gate"] as? [String: Any])
            #expect(verdict["status"] as? String == "failed")
            let rules = verdict["rules"] as? [[String: Any]] ?? []
            // The `nightly` rule does not apply to main.
            #expect(rules.map { $0["rule"] as? String } == ["maxFailures", "minPassRate", "minTestsCount", "requiredSuites"])
            #expect(rules[0]["actual"] as? Double == 2 && rules[0]["passed"] as? Bool == false)
            #expect(rules[1]["passed"] as? Bool == false)  // 1 of 3
            #expect(rules[2]["actual"] as? Double == 3 && rules[2]["passed"] as? Bool == true)
            #expect(rules[3]["detail"] as? String == "missing: Payments; failing: Checkout")
            let runID = try #require(judged.object["internalRunId"] as? String)

            // The run's page says it.
            let page = try await admin.get("/runs/\(runID)")
            #expect(page.status == 200)
            #expect(page.text.contains("Quality gate: <span class=\"status failed\">✘ failed</span>"))
            #expect(page.text.contains("<code>requiredSuites</code> missing: Payments; failing: Checkout"))
            #expect(page.text.contains("<code>minTestsCount</code> 3 <span class=\"muted\">(limit 3)</span>"))

            // The run keeps it, a re-push replays it, and it left an event.
            let run = try await admin.get("/v1/runs/\(runID)")
            #expect((run.object["gate"] as? [String: Any])?["status"] as? String == "failed")
            let again = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r1", cases: Self.failures))
            #expect(again.object["replayed"] as? Bool == true)
            #expect(NSDictionary(dictionary: again.object["gate"] as? [String: Any] ?? [:]) == NSDictionary(dictionary: verdict))
            let events = try await admin.get("/v1/projects/web/events?kind=run.gate_failed").object["items"] as? [[String: Any]] ?? []
            #expect(events.count == 1 && events.first?["subjectId"] as? String == runID)

            // Quarantine both failing cases: the gate forgives them and says why.
            try await waitForRollUps(admin, runs: 2)
            let inventory = try await admin.get("/v1/projects/web/cases").object["items"] as? [[String: Any]] ?? []
            let ids = Dictionary(uniqueKeysWithValues: inventory.compactMap { item in
                (item["name"] as? String).flatMap { name in (item["id"] as? String).map { (name, $0) } }
            })
            let b = try #require(ids["b"]), c = try #require(ids["c"])
            let quarantined = try await admin.post("/v1/cases/\(b)/quarantine", json: ["reason": "flaky on CI, JIRA-12"])
            #expect(quarantined.status == 200, "\(quarantined.text)")
            #expect(quarantined.object["reason"] as? String == "flaky on CI, JIRA-12" && quarantined.object["automatic"] as? Bool == false)
            #expect(try await admin.post("/v1/cases/\(c)/quarantine", json: ["reason": "being fixed"]).status == 200)
            let list = try await admin.get("/v1/projects/web/quarantine?limit=1")
            #expect((list.object["items"] as? [Any])?.count == 1 && list.object["nextCursor"] is String)

            try await admin.put("/v1/projects/web/gate", json: ["rules": [["rule": "maxFailures", "limit": 0]]]).expect(200)
            let forgiven = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r2", cases: Self.failures))
            let second = try #require(forgiven.object["gate"] as? [String: Any])
            #expect(second["status"] as? String == "passed", "\(second)")
            #expect(second["forgivenCount"] as? Int == 2)
            let reasons = (second["forgiven"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }
            #expect(Set(reasons) == ["flaky on CI, JIRA-12", "being fixed"])
            let forgivenPage = try await admin.get("/runs/\(try #require(forgiven.object["internalRunId"] as? String))")
            #expect(forgivenPage.text.contains("Forgiven — quarantined <span class=\"count\">2</span>"))
            #expect(forgivenPage.text.contains("— flaky on CI, JIRA-12"))

            // Released, it counts again.
            #expect(try await admin.delete("/v1/cases/\(b)/quarantine").status == 204)
            #expect(try await admin.delete("/v1/cases/\(b)/quarantine").status == 404)
            let counted = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r3", cases: Self.failures))
            #expect((counted.object["gate"] as? [String: Any])?["status"] as? String == "failed")
            let kinds = try await admin.get("/v1/projects/web/events").object["items"] as? [[String: Any]] ?? []
            #expect(kinds.filter { $0["kind"] as? String == "case.quarantined" }.count == 2)
            #expect(kinds.filter { $0["kind"] as? String == "case.released" }.count == 1)
        }
    }

    /// Auto-quarantine: the flip-flopping case is quarantined by the roll-up of the run that made it flaky,
    /// the broken one never is, and three clean passes release it; the gate forgives it meanwhile.
    @Test func autoQuarantineTakesFlakyCasesAndReleasesThem() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let bad = try await admin.put("/v1/projects/web/quarantine-policy", json: ["autoQuarantine": true, "releaseAfterCleanPasses": 0])
            #expect(bad.status == 422 && bad.pointers == ["/releaseAfterCleanPasses"])
            let set = try await admin.put("/v1/projects/web/quarantine-policy", json: ["autoQuarantine": true, "releaseAfterCleanPasses": 3])
            #expect(set.status == 200 && set.object["isDefault"] as? Bool == false, "\(set.text)")
            try await admin.put("/v1/projects/web/gate", json: ["rules": [["rule": "maxFailures", "limit": 0]]]).expect(200)

            var pushed = 0
            func push(_ cases: [[String: Any]]) async throws -> [String: Any] {
                let reply = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r\(pushed)", cases: cases))
                #expect(reply.status == 200, "\(reply.text)")
                pushed += 1
                return reply.object
            }
            for index in 0..<8 {
                var cases = [testCase("flip", index % 2 == 0 ? "failed" : "passed"), testCase("broken", index >= 4 ? "failed" : "passed")]
                cases += (0..<10).map { testCase("filler-\($0)", "passed") }
                _ = try await push(cases)
            }
            try await waitForRollUps(admin, runs: pushed)
            let listed = try await admin.get("/v1/projects/web/quarantine").object["items"] as? [[String: Any]] ?? []
            #expect(listed.map { $0["name"] as? String } == ["flip"], "\(listed)")
            #expect(listed.first?["automatic"] as? Bool == true && listed.first?["quarantinedBy"] as? String == "kaizen")
            #expect((listed.first?["reason"] as? String)?.hasPrefix("flaky (score ") == true)

            // Quarantined, its failure is forgiven; the broken case's is not.
            let judged = try await push([testCase("flip", "failed"), testCase("broken", "failed")])
            let gate = judged["gate"] as? [String: Any] ?? [:]
            #expect(gate["forgivenCount"] as? Int == 1 && gate["status"] as? String == "failed")
            // Three clean passes (a pass on a retry is not one) release it.
            _ = try await push([testCase("flip", "passed"), testCase("broken", "failed")])
            _ = try await push([testCase("flip", "passed", retries: ["failed"]), testCase("broken", "failed")])
            _ = try await push([testCase("flip", "passed"), testCase("broken", "failed")])
            _ = try await push([testCase("flip", "passed"), testCase("broken", "failed")])
            try await waitForRollUps(admin, runs: pushed)
            #expect((try await admin.get("/v1/projects/web/quarantine").object["items"] as? [Any])?.count == 1)
            _ = try await push([testCase("flip", "passed"), testCase("broken", "failed")])
            try await waitForRollUps(admin, runs: pushed)
            #expect((try await admin.get("/v1/projects/web/quarantine").object["items"] as? [Any])?.isEmpty == true)
            let events = try await admin.get("/v1/projects/web/events").object["items"] as? [[String: Any]] ?? []
            let released = events.filter { $0["kind"] as? String == "case.released" }
            #expect(released.count == 1 && (released.first?["payload"] as? [String: Any])?["automatic"] as? Bool == true)
            #expect(events.filter { $0["kind"] as? String == "case.quarantined" }.count == 1)

            // A pass on a retry counts as new flakiness only for a case the project does not already call flaky.
            let flaky = (try await admin.get("/v1/projects/web/cases?flaky=true").object["items"] as? [[String: Any]] ?? [])
                .compactMap { $0["name"] as? String }
            #expect(flaky.contains("flip") && !flaky.contains("filler-0"), "\(flaky)")
            try await admin.put("/v1/projects/web/gate", json: ["rules": [["rule": "maxNewFlaky", "limit": 0]]]).expect(200)
            let retried = try await push([
                testCase("flip", "passed", retries: ["failed"]), testCase("filler-0", "passed", retries: ["failed"]),
                testCase("filler-1", "passed"),
            ])
            let newFlaky = (retried["gate"] as? [String: Any])?["rules"] as? [[String: Any]] ?? []
            #expect(newFlaky.first?["rule"] as? String == "maxNewFlaky" && newFlaky.first?["actual"] as? Double == 1, "\(newFlaky)")
        }
    }

    @Test func badGatesAndQuarantinesAreRefusedWithPointers() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let bad = try await admin.put("/v1/projects/web/gate", json: ["rules": [
                ["rule": "maxFlakes", "limit": 1],
                ["rule": "minPassRate", "limit": 1.5],
                ["rule": "maxFailures", "limit": -1],
                ["rule": "maxFailures"],
                ["rule": "requiredSuites", "limit": 2],
                ["rule": "maxDurationMs", "limit": 10.5, "branches": [""]],
            ]])
            #expect(bad.status == 422, "\(bad.text)")
            let pointers = Set(bad.pointers)
            #expect(pointers == ["/rules/0/rule", "/rules/1/limit", "/rules/2/limit", "/rules/3/limit", "/rules/4/limit", "/rules/4/suites",
                                 "/rules/5/limit", "/rules/5/branches/0"])
            #expect(try await admin.get("/v1/projects/web/gate").object["isDefault"] as? Bool == true)

            // Members may quarantine but not set the gate; viewers neither.
            let member = try await mint(admin, role: "member")
            let viewer = try await mint(admin, role: "viewer")
            #expect(try await member.put("/v1/projects/web/gate", json: ["rules": []]).status == 403)
            _ = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r0", cases: [testCase("a", "failed")]))
            try await waitForRollUps(admin, runs: 1)
            let caseID = try #require((try await admin.get("/v1/projects/web/cases").object["items"] as? [[String: Any]])?.first?["id"] as? String)
            #expect(try await viewer.post("/v1/cases/\(caseID)/quarantine", json: ["reason": "x"]).status == 403)
            let empty = try await member.post("/v1/cases/\(caseID)/quarantine", json: ["reason": " ", "expiresAt": "2020-01-01T00:00:00Z"])
            #expect(empty.status == 422)
            let emptyPointers = Set(empty.pointers)
            #expect(emptyPointers == ["/reason", "/expiresAt"])
            #expect((try await admin.get("/v1/projects/web/quarantine").object["items"] as? [Any])?.isEmpty == true)
            #expect(try await member.post("/v1/cases/\(caseID)/quarantine", json: ["reason": "known", "expiresAt": "2099-01-01T00:00:00Z"]).status == 200)

            // Another workspace's case is not there.
            let other = try await server.cluster.catalog.createWorkspace(slug: "other", name: "Other")
            let (_, secret) = try await server.cluster.catalog.createToken(
                .init(name: "x", tokenClass: .workspace, workspaceID: other.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
            let stranger = admin.with(token: secret)
            #expect(try await stranger.post("/v1/cases/\(caseID)/quarantine", json: ["reason": "mine now"]).status == 404)
            #expect(try await stranger.delete("/v1/cases/\(caseID)/quarantine").status == 404)
            #expect(try await stranger.get("/v1/projects/web/gate").status == 404)
        }
    }
}

extension APIClient.Reply {
    /// The JSON pointers of a validation failure.
    var pointers: [String] {
        let details = (object["error"] as? [String: Any])?["details"] as? [String: Any]
        return (details?["errors"] as? [[String: Any]] ?? []).compactMap { $0["pointer"] as? String }
    }

    /// Expects the status, with the body in the message otherwise.
    func expect(_ status: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(self.status == status, "\(text)", sourceLocation: sourceLocation)
    }
}
