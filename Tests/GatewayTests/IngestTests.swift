import AsyncHTTPClient
import Crypto
import Foundation
import PostgresNIO
import Logging
import KaizenTestSupport
import NIOCore
import Testing

/// A kensho/v1 case.
func testCase(
    _ name: String, _ status: String, suite: String = "Suite", retries: [String] = [], attachments: [String] = [],
    steps: [[String: Any]] = []
) -> [String: Any] {
    var item: [String: Any] = ["name": name, "suite": suite, "status": status, "durationMs": 12]
    if !retries.isEmpty { item["retries"] = retries.map { ["status": $0] } }
    if !attachments.isEmpty { item["attachments"] = attachments }
    if !steps.isEmpty { item["steps"] = steps }
    if status == "failed" { item["error"] = ["type": "AssertionError", "message": "expected 1, got 2"] }
    return item
}

/// A kensho/v1 run whose totals agree with its cases.
func runDocument(
    project: String = "web", externalRunId: String, branch: String = "main", cases: [[String: Any]],
    uploadId: String? = nil
) -> [String: Any] {
    var totals = ["passed": 0, "failed": 0, "skipped": 0, "broken": 0, "flaky": 0]
    for item in cases {
        totals[item["status"] as! String, default: 0] += 1
        let retries = (item["retries"] as? [[String: Any]]) ?? []
        if item["status"] as? String == "passed" && retries.contains(where: { ["failed", "broken"].contains($0["status"] as? String) }) {
            totals["flaky", default: 0] += 1
        }
    }
    var doc: [String: Any] = [
        "schemaVersion": "kensho/v1", "project": ["slug": project], "externalRunId": externalRunId, "branch": branch,
        "commit": "a91c3e2", "startedAt": "2026-04-30T12:00:14Z", "finishedAt": "2026-04-30T12:04:08Z",
        "env": ["os": "linux"], "totals": totals, "cases": cases,
    ]
    if let uploadId { doc["uploadId"] = uploadId }
    return doc
}

func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

/// PUTs bytes to a presigned URL (no bearer token).
func put(_ url: String, _ data: Data, contentType: String? = "application/octet-stream") async throws -> APIClient.Reply {
    var request = HTTPClientRequest(url: url)
    request.method = .PUT
    if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
    request.body = .bytes(ByteBuffer(bytes: data))
    let response = try await testHTTPClient.execute(request, timeout: testRequestTimeout)
    let body = try await response.body.collect(upTo: 1 << 20)
    return APIClient.Reply(status: Int(response.status.code), headers: response.headers, body: Data(buffer: body))
}

func regression(_ reply: APIClient.Reply) -> [String: Any] { reply.object["regression"] as? [String: Any] ?? [:] }

@Suite struct IngestTests {
    @Test func twoPhasePushWithAttachmentsAndDedupe() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let log = Data("line 1\nline 2\n".utf8)
            let shot = Data((0..<4096).map { UInt8($0 % 251) })
            let initReply = try await admin.post(
                "/v1/ingest/kensho/init",
                json: [
                    "projectSlug": "web", "externalRunId": "gh-1",
                    "attachments": [
                        ["id": "att_log", "sha256": sha256Hex(log), "size": log.count, "contentType": "text/plain"],
                        ["id": "att_shot", "sha256": sha256Hex(shot), "size": shot.count, "contentType": "image/png"],
                    ],
                ])
            #expect(initReply.status == 200, "\(initReply.text)")
            let uploadId = try #require(initReply.object["uploadId"] as? String)
            #expect(uploadId.hasPrefix("upl_"))
            let presigned = initReply.object["presigned"] as? [[String: Any]] ?? []
            #expect(presigned.count == 2)
            #expect((initReply.object["alreadyExists"] as? [String]) == [])
            for item in presigned {
                let id = item["id"] as! String
                let reply = try await put(item["url"] as! String, id == "att_log" ? log : shot)
                #expect(reply.status == 201, "\(reply.text)")
            }
            // Content-addressed on disk.
            let blobPath = "\(server.config.blobDirectory)/\(sha256Hex(log).prefix(2))/\(sha256Hex(log).dropFirst(2).prefix(2))/\(sha256Hex(log))"
            #expect(FileManager.default.contents(atPath: blobPath) == log)

            let steps: [[String: Any]] = [
                ["name": "open page", "status": "passed", "durationMs": 5, "attachments": ["att_shot"],
                 "steps": [["name": "wait for load", "status": "passed", "durationMs": 3]]],
                ["name": "assert title", "status": "failed", "durationMs": 1],
            ]
            let document = runDocument(
                externalRunId: "gh-1",
                cases: [
                    testCase("loads home", "failed", attachments: ["att_log"], steps: steps),
                    testCase("logs in", "passed", retries: ["failed"]),
                    testCase("skipped one", "skipped"),
                ], uploadId: uploadId)
            let finalize = try await admin.post("/v1/ingest/kensho/finalize", json: document)
            #expect(finalize.status == 200, "\(finalize.text)")
            let runId = try #require(finalize.object["internalRunId"] as? String)
            #expect(runId.hasPrefix("run_"))
            #expect(finalize.object["replayed"] as? Bool == false)
            #expect(regression(finalize)["newFailures"] as? Int == 1)
            #expect(regression(finalize)["baseline"] is NSNull)
            let totals = finalize.object["totals"] as? [String: Any] ?? [:]
            #expect(totals["flaky"] as? Int == 1)

            // Read it all back.
            let run = try await admin.get("/v1/runs/\(runId)")
            #expect(run.status == 200)
            #expect(run.object["externalRunId"] as? String == "gh-1")
            #expect(run.object["commit"] as? String == "a91c3e2")
            #expect((run.object["project"] as? [String: Any])?["slug"] as? String == "web")
            #expect((run.object["casesUrl"] as? String)?.hasSuffix("/v1/runs/\(runId)/cases") == true)
            let cases = try await admin.get("/v1/runs/\(runId)/cases")
            #expect(cases.object["nextCursor"] is NSNull)
            let items = cases.object["items"] as? [[String: Any]] ?? []
            #expect(items.map { $0["name"] as? String } == ["loads home", "logs in", "skipped one"])
            #expect(items[1]["flaky"] as? Bool == true)
            #expect(items[1]["attempts"] as? Int == 2)
            let failedOnly = try await admin.get("/v1/runs/\(runId)/cases?status=failed")
            #expect((failedOnly.object["items"] as? [[String: Any]])?.count == 1)

            let caseId = try #require(items[0]["caseId"] as? String)
            let detail = try await admin.get("/v1/runs/\(runId)/cases/\(caseId)")
            #expect(detail.status == 200)
            let tree = detail.object["steps"] as? [[String: Any]] ?? []
            #expect(tree.map { $0["name"] as? String } == ["open page", "assert title"])
            #expect(((tree.first?["steps"] as? [[String: Any]])?.first?["name"] as? String) == "wait for load")
            let links = detail.object["attachments"] as? [[String: Any]] ?? []
            #expect(Set(links.compactMap { $0["id"] as? String }) == ["att_log", "att_shot"])
            let logLink = try #require(links.first { $0["id"] as? String == "att_log" }?["downloadUrl"] as? String)
            let download = try await admin.get(String(logLink.dropFirst(server.baseURL.count)))
            #expect(download.status == 200)
            #expect(download.body == log)
            #expect(download.headers.first(name: "Content-Type") == "application/octet-stream")
            #expect(try await admin.with(token: nil).get(String(logLink.dropFirst(server.baseURL.count))).status == 401)
            #expect((detail.object["history"] as? [[String: Any]])?.count == 1)
            #expect((detail.object["error"] as? [String: Any])?["message"] as? String == "expected 1, got 2")

            // The same content again is not uploaded twice.
            let again = try await admin.post(
                "/v1/ingest/kensho/init",
                json: [
                    "projectSlug": "web", "externalRunId": "gh-2",
                    "attachments": [["id": "att_again", "sha256": sha256Hex(log), "size": log.count, "contentType": "text/plain"]],
                ])
            #expect((again.object["alreadyExists"] as? [String]) == ["att_again"])
            #expect((again.object["presigned"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func tamperedExpiredAndMismatchedUploadsStoreNothing() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let data = Data("payload".utf8)
            let initReply = try await admin.post(
                "/v1/ingest/kensho/init",
                json: [
                    "projectSlug": "web", "externalRunId": "gh-1",
                    "attachments": [["id": "a1", "sha256": sha256Hex(data), "size": data.count, "contentType": "text/plain"]],
                ])
            let url = try #require((initReply.object["presigned"] as? [[String: Any]])?.first?["url"] as? String)

            let tampered = url.replacingOccurrences(of: "signature=", with: "signature=00")
            #expect(try await put(tampered, data).status == 401)
            let otherAttachment = url.replacingOccurrences(of: "/a1?", with: "/a2?")
            #expect(try await put(otherAttachment, data).status == 401)
            let expiredAt = url.replacingOccurrences(of: "expires=", with: "expires=1")  // a different expiry: signature breaks
            #expect(try await put(expiredAt, data).status == 401)

            let wrongBytes = try await put(url, Data("PAYLOAD".utf8))
            #expect(wrongBytes.status == 422)
            #expect(wrongBytes.errorMessage?.contains("sha256") == true)
            let tooLong = try await put(url, Data("payload, and more".utf8))
            #expect(tooLong.status == 413)
            let blobs = server.config.blobDirectory
            let stored = (FileManager.default.enumerator(atPath: blobs)?.allObjects as? [String] ?? [])
                .filter { $0.count > 10 && !$0.hasPrefix("tmp") }
            #expect(stored.isEmpty, "stored: \(stored)")

            // A case referring to the never-uploaded attachment is named in the 422.
            let uploadId = try #require(initReply.object["uploadId"] as? String)
            let finalize = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "gh-1", cases: [testCase("a", "passed", attachments: ["a1"])], uploadId: uploadId))
            #expect(finalize.status == 422)
            #expect(finalize.errorPointers == ["/cases/0/attachments/0"])
            #expect(finalize.errorMessage?.contains("a1") == true)

            #expect(try await put(url, data).status == 201)
        }
    }

    @Test func aRestartBetweenInitAndFinalizeLosesNothing() async throws {
        let first = try await TestServer.start()
        let admin = APIClient(baseURL: first.baseURL, token: first.adminToken)
        #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
        let data = Data("survives restarts".utf8)
        let initReply = try await admin.post(
            "/v1/ingest/kensho/init",
            json: [
                "projectSlug": "web", "externalRunId": "gh-1",
                "attachments": [["id": "log", "sha256": sha256Hex(data), "size": data.count, "contentType": "text/plain"]],
            ])
        let uploadId = try #require(initReply.object["uploadId"] as? String)
        let url = try #require((initReply.object["presigned"] as? [[String: Any]])?.first?["url"] as? String)
        #expect(try await put(url, data).status == 201)

        let second = try await first.restart()
        let after = APIClient(baseURL: second.baseURL, token: second.adminToken)
        let finalize = try await after.post(
            "/v1/ingest/kensho/finalize",
            json: runDocument(externalRunId: "gh-1", cases: [testCase("a", "passed", attachments: ["log"])], uploadId: uploadId))
        #expect(finalize.status == 200, "\(finalize.text)")
        await second.stop()
    }

    @Test func rePushAndRacingDuplicatesGiveOneRun() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            _ = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "base", cases: [testCase("a", "passed")]))
            let document = runDocument(externalRunId: "gh-7", cases: [testCase("a", "failed"), testCase("b", "passed")])
            let body = try JSONSerialization.data(withJSONObject: document)
            let replies = try await withThrowingTaskGroup(of: APIClient.Reply.self) { group in
                for _ in 0..<8 { group.addTask { try await admin.post("/v1/ingest/kensho/finalize", raw: body) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.status == 200 })
            let ids = Set(replies.compactMap { $0.object["internalRunId"] as? String })
            #expect(ids.count == 1)
            #expect(replies.filter { $0.object["replayed"] as? Bool == false }.count == 1)
            #expect(Set(replies.compactMap { regression($0)["newFailures"] as? Int }) == [1])
            // A later re-push, after other runs, still answers with the same run and regression.
            _ = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "gh-8", cases: [testCase("a", "passed")]))
            let again = try await admin.post("/v1/ingest/kensho/finalize", json: document)
            #expect(again.object["internalRunId"] as? String == ids.first)
            #expect(again.object["replayed"] as? Bool == true)
            #expect(regression(again)["newFailures"] as? Int == 1)
            let runs = try await admin.get("/v1/projects/web/runs")
            #expect((runs.object["items"] as? [Any])?.count == 3)
        }
    }

    @Test func regressionBucketsOnACraftedHistory() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let first = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(
                    externalRunId: "r1",
                    cases: [testCase("A", "passed"), testCase("B", "failed"), testCase("C", "failed"), testCase("D", "passed"),
                            testCase("G", "failed")]))
            #expect(regression(first)["newFailures"] as? Int == 3)  // no baseline: every failure is new
            let firstId = try #require(first.object["internalRunId"] as? String)

            let second = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(
                    externalRunId: "r2",
                    cases: [testCase("A", "failed"), testCase("B", "passed"), testCase("C", "broken"), testCase("D", "skipped"),
                            testCase("E", "failed")]))
            #expect(second.status == 200, "\(second.text)")
            let r2 = regression(second)
            #expect(r2["newFailures"] as? Int == 2)  // A regressed, E is new and failing
            #expect(r2["fixed"] as? Int == 1)  // B
            #expect(r2["stillFailing"] as? Int == 1)  // C (broken counts as failing); G is gone, D skipped
            #expect((r2["baseline"] as? [String: Any])?["id"] as? String == firstId)
            let secondId = try #require(second.object["internalRunId"] as? String)

            let newFailures = try await admin.get("/v1/runs/\(secondId)/regression?bucket=new_failure")
            #expect(Set((newFailures.object["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }) == ["A", "E"])
            let all = try await admin.get("/v1/runs/\(secondId)/regression")
            #expect((all.object["items"] as? [[String: Any]] ?? []).count == 4)

            // A branch's first run is compared with the default branch's latest run.
            let feature = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "f1", branch: "feature/x", cases: [testCase("A", "passed"), testCase("C", "failed")]))
            let rf = regression(feature)
            #expect((rf["baseline"] as? [String: Any])?["id"] as? String == secondId)
            #expect(rf["fixed"] as? Int == 1)
            #expect(rf["stillFailing"] as? Int == 1)
            // The branch's next run is compared with the branch itself.
            let featureId = feature.object["internalRunId"] as? String
            let feature2 = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "f2", branch: "feature/x", cases: [testCase("A", "failed"), testCase("C", "passed")]))
            #expect((regression(feature2)["baseline"] as? [String: Any])?["id"] as? String == featureId)
            #expect(regression(feature2)["newFailures"] as? Int == 1)
            #expect(regression(feature2)["fixed"] as? Int == 1)

            let mainRuns = try await admin.get("/v1/projects/web/runs?branch=main")
            #expect((mainRuns.object["items"] as? [[String: Any]] ?? []).compactMap { $0["externalRunId"] as? String } == ["r2", "r1"])
        }
    }

    @Test func invalidDocumentsReportEveryProblem() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            var wrongTotals = runDocument(externalRunId: "x", cases: [testCase("a", "passed"), testCase("b", "failed")])
            wrongTotals["totals"] = ["passed": 2, "failed": 0, "skipped": 0, "broken": 0, "flaky": 0]
            let totals = try await admin.post("/v1/ingest/kensho/finalize", json: wrongTotals)
            #expect(totals.status == 422)
            #expect(Set(totals.errorPointers) == ["/totals/passed", "/totals/failed"])
            let computed = totals.errorDetails?["computedTotals"] as? [String: Any]
            #expect(computed?["passed"] as? Int == 1)
            #expect(computed?["failed"] as? Int == 1)

            let broken: [String: Any] = [
                "schemaVersion": "kensho/v2", "project": ["slug": "web"], "branch": "has space",
                "totals": ["passed": 0, "failed": 0, "skipped": 0, "broken": 0],
                "cases": [["status": "passed"], ["name": "x", "status": "exploded"], ["name": "y", "status": "passed", "steps": [["status": "passed"]]]],
            ]
            let reply = try await admin.post("/v1/ingest/kensho/finalize", json: broken)
            #expect(reply.status == 422)
            #expect(
                Set(reply.errorPointers)
                    == ["/schemaVersion", "/externalRunId", "/branch", "/cases/0/name", "/cases/1/status", "/cases/2/steps/0/name"])
            let duplicate = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "d", cases: [testCase("same", "passed"), testCase("same", "failed")]))
            #expect(duplicate.status == 422)
            #expect(duplicate.errorPointers == ["/cases/1"])
            let wrongType = try await admin.post(
                "/v1/ingest/kensho/finalize", json: ["schemaVersion": "kensho/v1", "cases": "not an array"])
            #expect(wrongType.status == 422)
            #expect(wrongType.errorPointers == ["/cases"])
            #expect(wrongType.errorMessage?.contains("must be an array") == true, "\(wrongType.text.prefix(200))")
            // A project given as a bare slug: the message names the object it must be (it said "a string").
            var bareProject = runDocument(externalRunId: "p", cases: [testCase("a", "passed")])
            bareProject["project"] = "web"
            let project = try await admin.post("/v1/ingest/kensho/finalize", json: bareProject)
            #expect(project.status == 422)
            #expect(project.errorPointers == ["/project"])
            #expect(project.errorMessage?.contains("must be an object") == true, "\(project.text.prefix(200))")
            // Nothing was written.
            let runs = try await admin.get("/v1/projects/web/runs")
            #expect((runs.object["items"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func bigBodiesAre413AndQuotasAre429() async throws {
        try await withServer(configure: {
            $0.maxBodyBytes = 64 * 1024
            $0.finalizeQuota = .init(perMinute: 2, burstSeconds: 60)
        }) { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let many = (0..<2000).map { testCase("case number \($0) with a long enough name", "passed") }
            let big = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "big", cases: many))
            #expect(big.status == 413)
            #expect(big.errorCode == "payload_too_large")
            for index in 0..<2 {
                let ok = try await admin.post(
                    "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "q\(index)", cases: [testCase("a", "passed")]))
                #expect(ok.status == 200)
            }
            let limited = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "q3", cases: [testCase("a", "passed")]))
            #expect(limited.status == 429)
            #expect(limited.headers.first(name: "Retry-After") != nil)
            // Re-pushes are answered from storage and do not count against the quota.
            let replay = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "q0", cases: [testCase("a", "passed")]))
            #expect(replay.status == 200)
        }
    }

    @Test func pagesOfCasesAreStableAndComplete() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let cases = (0..<2500).map { testCase(String(format: "case-%05d", $0), $0 % 10 == 0 ? "failed" : "passed") }
            let finalize = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "big", cases: cases))
            #expect(finalize.status == 200, "\(finalize.text.prefix(300))")
            let runId = try #require(finalize.object["internalRunId"] as? String)
            var names: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await admin.get("/v1/runs/\(runId)/cases" + (cursor.map { "?cursor=\($0)" } ?? ""))
                #expect(page.status == 200)
                names += (page.object["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                cursor = page.object["nextCursor"] as? String
                pages += 1
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            #expect(names == cases.map { $0["name"] as! String })
            #expect(try await admin.get("/v1/runs/\(runId)/cases?cursor=garbage").status == 400)
            #expect(try await admin.get("/v1/runs/\(runId)/cases?limit=5000").status == 400)
        }
    }

    /// New cases go in with COPY; when another node added some of them meanwhile, the run takes that
    /// node's case ids and nothing is stored twice.
    @Test func casesAnotherNodeAddedMeanwhileAreTakenNotDuplicated() async throws {
        try await withServer { server, admin in
            let created = try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"])
            let projectID = try #require(created.object["id"] as? String)
            let ws = try #require(try await server.cluster.catalog.workspace(slug: "default"))
            let shard = try server.cluster.server(forShard: ws.shardID)
            let logger = Logger(label: "t")
            // What another node wrote after this node's cache was filled: one of the keys the run brings.
            try await shard.run { connection in
                try await connection.query(
                    """
                    INSERT INTO cases (workspace_id, id, project_id, case_key, name, suite)
                    VALUES (\(ws.id), 'case_fromanothernode', \(projectID), 'k-shared', 'shared', 'Suite')
                    """, logger: logger)
            }
            var shared = testCase("shared", "passed")
            shared["key"] = "k-shared"
            var fresh = testCase("fresh", "failed")
            fresh["key"] = "k-fresh"
            let reply = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r1", cases: [shared, fresh]))
            #expect(reply.status == 200, "\(reply.text)")
            let runID = try #require(reply.object["internalRunId"] as? String)
            let (inventory, results) = try await shard.run { connection -> ([String: String], [String]) in
                var inventory: [String: String] = [:]
                for try await (key, id) in try await connection.query(
                    "SELECT case_key, id FROM cases WHERE workspace_id = \(ws.id) AND project_id = \(projectID)", logger: logger
                ).decode((String, String).self) {
                    inventory[key] = id
                }
                var results: [String] = []
                for try await id in try await connection.query(
                    "SELECT case_id FROM case_results WHERE workspace_id = \(ws.id) AND run_id = \(runID) ORDER BY ordinal", logger: logger
                ).decode(String.self) {
                    results.append(id)
                }
                return (inventory, results)
            }
            #expect(inventory.count == 2)
            #expect(inventory["k-shared"] == "case_fromanothernode")
            #expect(results == [inventory["k-shared"], inventory["k-fresh"]].compactMap { $0 })
            // The next run knows both from the cache and adds nothing.
            let next = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r2", cases: [shared, fresh]))
            #expect(next.status == 200)
            let count = try await shard.run { connection in
                try await connection.query(
                    "SELECT count(*)::int FROM cases WHERE workspace_id = \(ws.id) AND project_id = \(projectID)", logger: logger
                ).collect().first?.decode(Int.self)
            }
            #expect(count == 2)
        }
    }

    @Test func runsOfAnotherWorkspaceAre404() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let finalize = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r", cases: [testCase("a", "failed")]))
            let runId = try #require(finalize.object["internalRunId"] as? String)
            let caseId = try #require(
                ((try await admin.get("/v1/runs/\(runId)/cases")).object["items"] as? [[String: Any]])?.first?["caseId"] as? String)
            let other = try await server.cluster.catalog.createWorkspace(slug: "other", name: "Other")
            let (_, secret) = try await server.cluster.catalog.createToken(
                .init(name: "x", tokenClass: .workspace, workspaceID: other.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
            let outsider = admin.with(token: secret)
            #expect(try await outsider.get("/v1/runs/\(runId)").status == 404)
            #expect(try await outsider.get("/v1/runs/\(runId)/cases").status == 404)
            #expect(try await outsider.get("/v1/runs/\(runId)/cases/\(caseId)").status == 404)
            #expect(try await outsider.get("/v1/runs/\(runId)/regression").status == 404)
            #expect(try await outsider.get("/v1/projects/web/runs").status == 404)
            // Its own project named "web" does not see the other workspace's run either.
            #expect(try await outsider.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let replay = try await outsider.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r", cases: [testCase("a", "passed")]))
            #expect(replay.object["replayed"] as? Bool == false)
            #expect(replay.object["internalRunId"] as? String != runId)
        }
    }
}

@Suite struct IngestEncodingTests {
    /// Text that COPY's format must escape survives the round trip byte for byte.
    @Test func awkwardTextRoundTrips() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let name = "tab\there, newline\nthere, back\\slash, \"quotes\", {braces}, ünïcødé 🚀, \\N"
            let message = "line 1\r\nline 2\t\\t literally\n\\N"
            var item = testCase(name, "failed", steps: [["name": "step\twith\\odd\nchars", "status": "failed"]])
            item["error"] = ["type": "E\\rr", "message": message, "trace": "at a\\b\n\tat c"]
            item["labels"] = ["owner": "a\"b\\c\td", "ctl": "\u{01}bell\u{1F}", "k\"ey": "🚀"]
            item["parameters"] = ["input": "x\ny"]
            let finalize = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "odd", cases: [item]))
            #expect(finalize.status == 200, "\(finalize.text)")
            let runId = try #require(finalize.object["internalRunId"] as? String)
            let listed = try #require((try await admin.get("/v1/runs/\(runId)/cases")).object["items"] as? [[String: Any]])
            let only = try #require(listed.first)
            #expect(only["name"] as? String == name)
            #expect((only["error"] as? [String: Any])?["message"] as? String == message)
            #expect((only["error"] as? [String: Any])?["trace"] as? String == "at a\\b\n\tat c")
            #expect((only["labels"] as? [String: Any])?["owner"] as? String == "a\"b\\c\td")
            #expect((only["labels"] as? [String: Any])?["ctl"] as? String == "\u{01}bell\u{1F}")
            #expect((only["labels"] as? [String: Any])?["k\"ey"] as? String == "🚀")
            #expect((only["parameters"] as? [String: Any])?["input"] as? String == "x\ny")
            let caseId = try #require(only["caseId"] as? String)
            let detail = try await admin.get("/v1/runs/\(runId)/cases/\(caseId)")
            #expect((detail.object["steps"] as? [[String: Any]])?.first?["name"] as? String == "step\twith\\odd\nchars")
        }
    }
}
