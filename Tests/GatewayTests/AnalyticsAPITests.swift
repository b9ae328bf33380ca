import Foundation
import KaizenTestSupport
import Storage
import Testing

/// Daily analytics and the cross-workspace overview, from the roll-ups.
@Suite struct AnalyticsAPITests {
    static var today: String {
        Date().formatted(Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day())
    }

    @Test func dailySeriesPerMetricAndBranch() async throws {
        try await withServer(configure: { $0.finalizeQuota.perMinute = 60_000 }) { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            // main: 8 passed + 2 failed; feature: 1 passed + 1 broken + 1 skipped, one pass only on a retry.
            let main = (0..<8).map { testCase("m\($0)", "passed") } + [testCase("f1", "failed"), testCase("f2", "failed")]
            let feature = [testCase("a", "passed", retries: ["failed"]), testCase("b", "broken"), testCase("c", "skipped")]
            #expect(try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "m", cases: main)).status == 200)
            #expect(try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "f", branch: "feature", cases: feature)).status == 200)
            try await waitForRollUps(admin, runs: 2)

            let series = try await admin.get("/v1/projects/web/analytics?metric=passrate&window=7d")
            #expect(series.status == 200, "\(series.text)")
            let points = series.object["points"] as? [[String: Any]] ?? []
            #expect(points.count == 7)
            #expect(points.last?["date"] as? String == Self.today && series.object["to"] as? String == Self.today)
            #expect(points.dropLast().allSatisfy { $0["value"] is NSNull && $0["runs"] as? Int == 0 })
            #expect(points.last?["runs"] as? Int == 2)
            #expect((points.last?["value"] as? Double).map { abs($0 - 9.0 / 12) < 1e-9 } == true)

            func last(_ query: String) async throws -> Double? {
                let reply = try await admin.get("/v1/projects/web/analytics?\(query)")
                #expect(reply.status == 200, "\(reply.text)")
                return (reply.object["points"] as? [[String: Any]])?.last?["value"] as? Double
            }
            #expect(try await last("metric=passrate&branch=feature") == 0.5)
            #expect(try await last("metric=failures") == 3)
            #expect(try await last("metric=duration") == 12 * 13 / 2)  // 13 cases of 12 ms over 2 runs
            #expect(try await last("metric=flakiness&branch=feature") == 0.5)
            #expect(try await admin.get("/v1/projects/web/analytics").object["window"] as? String == "30d")
            #expect((try await admin.get("/v1/projects/web/analytics?window=90d").object["points"] as? [Any])?.count == 90)
            #expect(try await admin.get("/v1/projects/web/analytics?metric=mood").status == 400)
            #expect(try await admin.get("/v1/projects/web/analytics?window=1y").status == 400)
            #expect(try await admin.get("/v1/projects/nope/analytics").status == 404)
        }
    }

    @Test func overviewSpansTheCallersWorkspacesAndHidesWhatTheyCannotSee() async throws {
        try await withServer(configure: { $0.finalizeQuota.perMinute = 60_000 }) { server, admin in
            let ops = try await server.cluster.catalog.createWorkspace(slug: "ops", name: "Ops")
            let (_, secret) = try await server.cluster.catalog.createToken(
                .init(name: "ci", tokenClass: .workspace, workspaceID: ops.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
            let opsAdmin = admin.with(token: secret)
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            #expect(try await admin.post("/v1/projects", json: ["slug": "api", "name": "API"]).status == 201)
            #expect(try await opsAdmin.post("/v1/projects", json: ["slug": "infra", "name": "Infra"]).status == 201)
            #expect(try await opsAdmin.post("/v1/projects", json: ["slug": "secret", "name": "Secret", "accessMode": "private"]).status == 201)

            let push: [(APIClient, String, [[String: Any]])] = [
                (admin, "web", [testCase("a", "passed"), testCase("b", "failed")]),
                (admin, "api", [testCase("a", "failed"), testCase("b", "failed"), testCase("c", "passed")]),
                (opsAdmin, "infra", [testCase("a", "passed"), testCase("b", "skipped")]),
                (opsAdmin, "secret", [testCase("a", "failed"), testCase("b", "failed"), testCase("c", "failed"), testCase("d", "failed")]),
            ]
            for (index, (client, project, cases)) in push.enumerated() {
                let reply = try await client.post("/v1/ingest/kensho/finalize", json: runDocument(project: project, externalRunId: "r\(index)", cases: cases))
                #expect(reply.status == 200, "\(reply.text)")
            }
            try await waitForRollUps(admin, runs: 2)
            try await waitForRollUps(opsAdmin, workspace: "ops", runs: 2)

            // A member of both workspaces: the private project of "ops" is not theirs to see.
            // Each admin adds dana to their workspace; a token covering both is dana's own (sign-in's kind:
            // no issuing workspace), since a token an admin mints is confined to that admin's workspace.
            _ = try await mint(opsAdmin, workspace: "ops", tokenClass: "user", role: "member", user: "dana@example.com")
            let confined = try await mint(admin, tokenClass: "user", role: "member", user: "dana@example.com")
            #expect((try await confined.get("/v1/overview").object["summary"] as? [String: Any])?["workspaces"] as? Int == 1)
            let catalog = server.cluster.catalog
            let danaUser = try await catalog.upsertUser(email: "dana@example.com", name: nil)
            let (_, own) = try await catalog.createToken(
                .init(
                    name: "dana signed in", tokenClass: .user, workspaceID: nil, role: nil, userID: danaUser.id,
                    createdBy: nil, expiresAt: Date(timeIntervalSinceNow: 3600)))
            let dana = admin.with(token: own)
            let overview = try await dana.get("/v1/overview?window=7d")
            #expect(overview.status == 200, "\(overview.text)")
            let summary = overview.object["summary"] as? [String: Any] ?? [:]
            #expect(summary["workspaces"] as? Int == 2 && summary["projects"] as? Int == 3)
            #expect(summary["runs"] as? Int == 3)
            #expect(summary["passed"] as? Int == 3 && summary["failed"] as? Int == 3 && summary["skipped"] as? Int == 1)
            #expect(summary["passRate"] as? Double == 0.5)
            let trends = overview.object["dailyTrends"] as? [[String: Any]] ?? []
            #expect(trends.count == 7 && trends.last?["date"] as? String == Self.today && trends.last?["runs"] as? Int == 3)
            let top = overview.object["topFailingProjects"] as? [[String: Any]] ?? []
            #expect(top.compactMap { ($0["project"] as? [String: Any])?["slug"] as? String } == ["api", "web"])
            let recent = overview.object["recentRuns"] as? [[String: Any]] ?? []
            #expect(recent.compactMap { ($0["project"] as? [String: Any])?["slug"] as? String } == ["infra", "api", "web"])

            // The workspace admin of "ops" sees its private project; ?workspace= narrows.
            let opsView = try await opsAdmin.get("/v1/overview")
            #expect((opsView.object["summary"] as? [String: Any])?["projects"] as? Int == 2)
            #expect(((opsView.object["topFailingProjects"] as? [[String: Any]])?.first?["project"] as? [String: Any])?["slug"] as? String == "secret")
            let narrowed = try await dana.get("/v1/overview?workspace=default")
            #expect((narrowed.object["summary"] as? [String: Any])?["workspaces"] as? Int == 1)
            #expect(try await dana.get("/v1/overview?workspace=nowhere").status == 404)
            #expect(try await dana.get("/v1/overview?window=2d").status == 400)
        }
    }
}
