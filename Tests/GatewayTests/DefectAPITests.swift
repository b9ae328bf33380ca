import Foundation
import KaizenTestSupport
import Testing

/// Defects, their attribution, and case annotations, over HTTP.
@Suite struct DefectAPITests {
    func dbDown(_ name: String, port: Int, ms: Int) -> [String: Any] {
        var item = testCase(name, "broken")
        item["error"] = ["type": "ConnectionError", "message": "connection to 10.0.0.\(port):5432 refused after \(ms) ms"]
        return item
    }

    func caseID(_ admin: APIClient, _ name: String) async throws -> String {
        let items = try await admin.get("/v1/projects/web/cases?q=\(name)").object["items"] as? [[String: Any]] ?? []
        return try #require(items.first { $0["name"] as? String == name }?["id"] as? String)
    }

    func errorPointers(_ reply: APIClient.Reply) -> [String] {
        let details = (reply.object["error"] as? [String: Any])?["details"] as? [String: Any]
        return (details?["errors"] as? [[String: Any]] ?? []).compactMap { $0["pointer"] as? String }
    }

    @Test func defectsCountAffectedRunsAndAreAttributedToNewFailures() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            // r0: all pass. r1: "orders" cannot reach the database. r2: the same (other host and time) and "ui" fails.
            let runs: [[[String: Any]]] = [
                [testCase("orders", "passed"), testCase("ui", "passed"), testCase("search", "passed")],
                [dbDown("orders", port: 7, ms: 3012), testCase("ui", "passed"), testCase("search", "passed")],
                [dbDown("orders", port: 9, ms: 2990), testCase("ui", "failed"), testCase("search", "passed")],
            ]
            for (index, cases) in runs.enumerated() {
                #expect(try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r\(index)", cases: cases)).status == 200)
            }
            try await waitForRollUps(admin, runs: 3)
            let groups = try await admin.get("/v1/projects/web/failure-groups").object["items"] as? [[String: Any]] ?? []
            let dbGroup = try #require(groups.first { $0["errorType"] as? String == "ConnectionError" })
            let fingerprint = try #require(dbGroup["fingerprint"] as? String)
            #expect(dbGroup["runs"] as? Int == 2)
            let ui = try await caseID(admin, "ui")

            let created = try await admin.post(
                "/v1/projects/web/defects",
                json: ["title": "Orders DB refuses connections", "externalUrl": "https://tracker.example.com/OPS-42",
                       "failureGroups": [fingerprint], "cases": [ui]])
            #expect(created.status == 201, "\(created.text)")
            let defectID = try #require(created.object["id"] as? String)
            #expect(defectID.hasPrefix("dft_"))
            #expect(created.object["status"] as? String == "open")
            #expect(created.object["affectedRuns"] as? Int == 2)  // r1 (orders), r2 (orders and ui)
            #expect(created.object["createdBy"] is String)
            #expect((created.object["cases"] as? [[String: Any]])?.first?["name"] as? String == "ui")
            #expect((created.object["failureGroups"] as? [[String: Any]])?.first?["errorType"] as? String == "ConnectionError")

            let opened = try await admin.get("/v1/projects/web/events?kind=defect.opened").object["items"] as? [[String: Any]] ?? []
            #expect(opened.count == 1)
            #expect(opened.first?["subjectId"] as? String == defectID)
            #expect((opened.first?["payload"] as? [String: Any])?["title"] as? String == "Orders DB refuses connections")

            // A new run failing the same way is attributed to the defect.
            let r3 = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "r3", cases: [dbDown("orders", port: 3, ms: 17), testCase("ui", "passed"), testCase("search", "passed")]))
            let r3ID = try #require(r3.object["internalRunId"] as? String)
            try await waitForRollUps(admin, runs: 4)
            let runGroups = try await admin.get("/v1/runs/\(r3ID)/failure-groups").array
            #expect(runGroups.count == 1)
            #expect(((runGroups.first?["defects"] as? [[String: Any]])?.first)?["id"] as? String == defectID)
            #expect(runGroups.first?["isNew"] as? Bool == false)
            let after = try await admin.get("/v1/defects/\(defectID)")
            #expect(after.status == 200)
            #expect(after.object["affectedRuns"] as? Int == 3)
            #expect(after.object["lastAffectedRunId"] as? String == r3ID)

            // Status changes show in the project's extended stats.
            let acknowledged = try await admin.patch("/v1/defects/\(defectID)", json: ["status": "acknowledged"])
            #expect(acknowledged.status == 200, "\(acknowledged.text)")
            #expect(acknowledged.object["status"] as? String == "acknowledged")
            #expect(acknowledged.object["title"] as? String == "Orders DB refuses connections")
            let counts = ((try await admin.get("/v1/projects/web").object["extendedStats"] as? [String: Any])?["defects"] as? [String: Any]) ?? [:]
            #expect(counts["open"] as? Int == 0 && counts["acknowledged"] as? Int == 1)
            #expect((try await admin.get("/v1/projects/web/defects?status=acknowledged").object["items"] as? [[String: Any]])?.count == 1)
            #expect((try await admin.get("/v1/projects/web/defects?status=open").object["items"] as? [[String: Any]])?.count == 0)

            // Links replace: without the cluster only ui's failure in r2 is left; the link can be cleared.
            let narrowed = try await admin.patch("/v1/defects/\(defectID)", json: ["failureGroups": [], "externalUrl": ""])
            #expect(narrowed.object["affectedRuns"] as? Int == 1)
            #expect(narrowed.object["externalUrl"] is NSNull)

            // Bad input names the field; nothing is written.
            let before = (try await admin.get("/v1/projects/web/defects").object["items"] as? [[String: Any]])?.count
            #expect(errorPointers(try await admin.post("/v1/projects/web/defects", json: ["title": "  "])) == ["/title"])
            #expect(errorPointers(try await admin.post("/v1/projects/web/defects", json: ["title": "x", "externalUrl": "ftp://x"])) == ["/externalUrl"])
            #expect(errorPointers(try await admin.post(
                "/v1/projects/web/defects", json: ["title": "x", "cases": [ui, "case_00000000000000000000000000"]])) == ["/cases/1"])
            #expect(errorPointers(try await admin.post("/v1/projects/web/defects", json: ["title": "x", "failureGroups": ["0123"]])) == ["/failureGroups/0"])
            #expect(errorPointers(try await admin.patch("/v1/defects/\(defectID)", json: ["title": ""])) == ["/title"])
            let unknownField = try await admin.post("/v1/projects/web/defects", json: ["title": "x", "severity": "high"])
            #expect(unknownField.status == 400 || unknownField.status == 422)
            #expect((try await admin.get("/v1/projects/web/defects").object["items"] as? [[String: Any]])?.count == before)
            #expect(try await admin.get("/v1/defects/dft_00000000000000000000000000").status == 404)
            #expect(try await admin.get("/v1/defects/nonsense").status == 404)
            let viewer = try await mint(admin, role: "viewer")
            #expect(try await viewer.post("/v1/projects/web/defects", json: ["title": "x"]).status == 403)
            #expect(try await viewer.get("/v1/defects/\(defectID)").status == 200)

            // Newest first, paged.
            for index in 0..<3 {
                #expect(try await admin.post("/v1/projects/web/defects", json: ["title": "d\(index)"]).status == 201)
            }
            let page1 = try await admin.get("/v1/projects/web/defects?limit=2")
            #expect((page1.object["items"] as? [[String: Any]])?.map { $0["title"] as? String } == ["d2", "d1"])
            let cursor = try #require(page1.object["nextCursor"] as? String)
            let page2 = try await admin.get("/v1/projects/web/defects?limit=2&cursor=\(cursor)")
            #expect((page2.object["items"] as? [[String: Any]])?.map { $0["title"] as? String } == ["d0", "Orders DB refuses connections"])
            #expect(page2.object["nextCursor"] is NSNull)
        }
    }

    @Test func casesCarryLabelsOwnerAndDefectLinksWithWhoAndWhen() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            #expect(try await admin.post("/v1/projects", json: ["slug": "api", "name": "API"]).status == 201)
            let cases = [testCase("checkout", "failed"), testCase("login", "passed")]
            #expect(try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r0", cases: cases)).status == 200)
            try await waitForRollUps(admin, runs: 1)
            let checkout = try await caseID(admin, "checkout")
            let defect = try await admin.post("/v1/projects/web/defects", json: ["title": "Checkout total is off by one"])
            let defectID = try #require(defect.object["id"] as? String)
            let foreign = try await admin.post("/v1/projects/api/defects", json: ["title": "Another project's defect"])
            let foreignID = try #require(foreign.object["id"] as? String)

            let patched = try await admin.patch(
                "/v1/cases/\(checkout)", json: ["labels": ["payments", "slow", "payments"], "owner": "team-shop", "defects": [defectID]])
            #expect(patched.status == 200, "\(patched.text)")
            #expect(patched.object["labels"] as? [String] == ["payments", "slow"])
            #expect(patched.object["owner"] as? String == "team-shop")
            #expect(patched.object["annotatedBy"] is String && patched.object["annotatedAt"] is String)
            #expect((patched.object["defects"] as? [[String: Any]])?.first?["id"] as? String == defectID)
            let windows = patched.object["windows"] as? [[String: Any]] ?? []
            #expect(windows.map { $0["window"] as? String } == ["7d", "30d", "90d"])
            #expect(windows.first?["results"] as? Int == 1 && windows.first?["passRate"] as? Double == 0)
            #expect(windows.first?["medianDurationMs"] as? Double == 12)
            // The link counts the case's failing history against the defect.
            #expect(try await admin.get("/v1/defects/\(defectID)").object["affectedRuns"] as? Int == 1)

            func names(_ query: String) async throws -> [String] {
                (try await admin.get("/v1/projects/web/cases?\(query)").object["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            }
            #expect(try await names("label=slow") == ["checkout"])
            #expect(try await names("owner=team-shop") == ["checkout"])
            #expect(try await names("label=none").isEmpty)

            // Leaving fields out keeps them; an empty owner clears it.
            let cleared = try await admin.patch("/v1/cases/\(checkout)", json: ["owner": ""])
            #expect(cleared.object["owner"] == nil && cleared.object["labels"] as? [String] == ["payments", "slow"])
            #expect((cleared.object["defects"] as? [[String: Any]])?.count == 1)

            #expect(errorPointers(try await admin.patch("/v1/cases/\(checkout)", json: ["labels": ["ok", ""]])) == ["/labels/1"])
            #expect(errorPointers(try await admin.patch("/v1/cases/\(checkout)", json: ["defects": [foreignID]])) == ["/defects/0"])
            #expect(errorPointers(try await admin.patch("/v1/cases/\(checkout)", json: ["owner": String(repeating: "x", count: 201)])) == ["/owner"])
            #expect(try await admin.patch("/v1/cases/case_00000000000000000000000000", json: ["owner": "x"]).status == 404)
            let viewer = try await mint(admin, role: "viewer")
            #expect(try await viewer.patch("/v1/cases/\(checkout)", json: ["owner": "x"]).status == 403)

            let unlinked = try await admin.patch("/v1/cases/\(checkout)", json: ["defects": []])
            #expect((unlinked.object["defects"] as? [[String: Any]])?.isEmpty == true)
            #expect(try await admin.get("/v1/defects/\(defectID)").object["affectedRuns"] as? Int == 0)
        }
    }
}
