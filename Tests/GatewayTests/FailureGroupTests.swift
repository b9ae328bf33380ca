import Foundation
import KaizenTestSupport
import Testing

/// Failure clusters on a crafted history: messages that differ only in numbers, addresses and ids
/// group together; a cluster's first run calls it new; the project view counts runs and occurrences.
@Suite struct FailureGroupTests {
    func failing(_ name: String, type: String, message: String) -> [String: Any] {
        var item = testCase(name, "failed")
        item["error"] = ["type": type, "message": message, "trace": "at Pool.connect (pool.swift:\(name.count))\nat main"]
        return item
    }

    @Test func clustersPerRunAndAcrossTheProject() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let first = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(
                    externalRunId: "r1",
                    cases: [
                        failing("a", type: "TimeoutError", message: "timeout after 3012 ms on 10.0.0.7:5432"),
                        failing("bb", type: "TimeoutError", message: "timeout after 2990 ms on 10.0.0.9:5432"),
                        failing("ccc", type: "TimeoutError", message: "timeout after 15 ms on 10.1.0.1:5432"),
                        failing("d", type: "AssertionError", message: "expected 1, got 2"),
                        testCase("ok", "passed"),
                    ]))
            let firstId = try #require(first.object["internalRunId"] as? String)
            try await waitForRollUps(admin, runs: 1)
            let second = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(
                    externalRunId: "r2",
                    cases: [
                        failing("a", type: "TimeoutError", message: "timeout after 4000 ms on 10.0.0.8:5432"),
                        failing("e", type: "NullPointerException", message: "object at 0x7f9aaa190350 is nil"),
                        testCase("ok", "passed"),
                    ]))
            let secondId = try #require(second.object["internalRunId"] as? String)
            try await waitForRollUps(admin, runs: 2)

            let groups1 = try await admin.get("/v1/runs/\(firstId)/failure-groups")
            #expect(groups1.status == 200, "\(groups1.text)")
            let g1 = groups1.array
            #expect(g1.map { $0["count"] as? Int } == [3, 1])
            #expect(g1.first?["errorType"] as? String == "TimeoutError")
            #expect((g1.first?["cases"] as? [[String: Any]])?.map { $0["name"] as? String } == ["a", "bb", "ccc"])
            #expect(g1.allSatisfy { $0["isNew"] as? Bool == true })

            let g2 = try await admin.get("/v1/runs/\(secondId)/failure-groups").array
            #expect(g2.count == 2)
            let timeout = try #require(g2.first { $0["errorType"] as? String == "TimeoutError" })
            let npe = try #require(g2.first { $0["errorType"] as? String == "NullPointerException" })
            #expect(timeout["fingerprint"] as? String == g1.first?["fingerprint"] as? String)
            #expect(timeout["isNew"] as? Bool == false)
            #expect(npe["isNew"] as? Bool == true)

            let project = try await admin.get("/v1/projects/web/failure-groups")
            #expect(project.status == 200, "\(project.text)")
            let clusters = project.object["items"] as? [[String: Any]] ?? []
            #expect(clusters.count == 3)
            let acrossTimeout = try #require(clusters.first { $0["errorType"] as? String == "TimeoutError" })
            #expect(acrossTimeout["runs"] as? Int == 2)
            #expect(acrossTimeout["occurrences"] as? Int == 4)
            #expect(acrossTimeout["firstSeenRunId"] as? String == firstId)
            #expect(acrossTimeout["lastSeenRunId"] as? String == secondId)
            #expect(acrossTimeout["affectedCases"] as? Int == 3)  // a (twice), bb, ccc
            let struck = (acrossTimeout["cases"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(struck.first == "a" && Set(struck) == ["a", "bb", "ccc"])

            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await admin.get("/v1/projects/web/failure-groups?limit=1" + (cursor.map { "&cursor=\($0)" } ?? ""))
                seen += (page.object["items"] as? [[String: Any]] ?? []).compactMap { $0["fingerprint"] as? String }
                cursor = page.object["nextCursor"] as? String
            } while cursor != nil && seen.count < 10
            #expect(Set(seen) == Set(clusters.compactMap { $0["fingerprint"] as? String }) && seen.count == 3)
            #expect(try await admin.get("/v1/projects/nope/failure-groups").status == 404)
        }
    }
}
