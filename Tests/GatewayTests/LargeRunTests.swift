import Foundation
import KaizenTestSupport
import NIOCore
import Testing

/// A 50,000-case run with steps goes through the real HTTP stack in one finalize, and the next run
/// of the branch gets its regression computed against it at that scale.
@Suite struct LargeRunTests {
    static let caseCount = 50_000

    func cases(failing: (Int) -> Bool) -> [[String: Any]] {
        (0..<Self.caseCount).map { i in
            testCase(
                "case \(i)", failing(i) ? "failed" : "passed", suite: "Suite\(i % 100)",
                steps: [
                    ["name": "arrange", "status": "passed", "durationMs": 1],
                    ["name": "act and assert", "status": failing(i) ? "failed" : "passed", "durationMs": 2],
                ])
        }
    }

    @Test func fiftyThousandCasesInOneFinalize() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            // Run 1: every 100th case fails.
            let first = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "big-1", cases: cases(failing: { $0 % 100 == 0 })),
                timeout: .seconds(600))
            #expect(first.status == 200, "\(first.text.prefix(500))")
            #expect((first.object["totals"] as? [String: Any])?["failed"] as? Int == 500)
            let firstId = try #require(first.object["internalRunId"] as? String)

            // Run 2: the old failures are fixed except every 1000th; every 100th + 1 is new.
            let second = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(
                    externalRunId: "big-2", cases: cases(failing: { $0 % 1000 == 0 || $0 % 100 == 1 })),
                timeout: .seconds(600))
            #expect(second.status == 200, "\(second.text.prefix(500))")
            let summary = regression(second)
            #expect(summary["newFailures"] as? Int == 500)
            #expect(summary["fixed"] as? Int == 450)
            #expect(summary["stillFailing"] as? Int == 50)
            #expect((summary["baseline"] as? [String: Any])?["id"] as? String == firstId)
            let secondId = try #require(second.object["internalRunId"] as? String)

            // Everything was stored: page through all failed cases, and count one full page of all.
            var failed = 0
            var cursor: String?
            repeat {
                let page = try await admin.get(
                    "/v1/runs/\(secondId)/cases?status=failed" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == 200)
                failed += (page.object["items"] as? [[String: Any]] ?? []).count
                cursor = page.object["nextCursor"] as? String
            } while cursor != nil
            #expect(failed == 550)
            let all = try await admin.get("/v1/runs/\(secondId)/cases")
            #expect((all.object["items"] as? [[String: Any]] ?? []).count == 1000)
            #expect(all.object["nextCursor"] is String)
            let fixed = try await admin.get("/v1/runs/\(secondId)/regression?bucket=fixed")
            #expect(fixed.status == 200, "\(fixed.text.prefix(300))")
            let fixedItems = fixed.object["items"] as? [[String: Any]] ?? []
            #expect(fixedItems.count == 450)
            #expect(fixedItems.allSatisfy { $0["status"] as? String == "passed" })
        }
    }
}
