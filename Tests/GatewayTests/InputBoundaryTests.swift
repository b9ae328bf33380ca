import Foundation
import KaizenTestSupport
import Testing

/// Issue 11 §2, §3, §7: every class of bad input is answered with the envelope — the right status,
/// a precise pointer or parameter name — and nothing is half-written; no input crashes the server.
@Suite struct InputBoundaryTests {
    /// A raw JSON body (so it can hold what JSONSerialization would not write, such as 1e999).
    func post(_ client: APIClient, _ path: String, _ json: String) async throws -> APIClient.Reply {
        try await client.post(path, raw: Data(json.utf8))
    }

    @Test func hugeDurationsAre422NotACrash() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            for number in ["1e19", "1e308", "1e999", "-1"] {
                let reply = try await post(
                    admin, "/v1/ingest/kensho/finalize",
                    """
                    {"schemaVersion":"kensho/v1","project":{"slug":"web"},"externalRunId":"big-\(number)","branch":"main",
                     "totals":{"passed":1,"failed":0,"skipped":0,"broken":0},
                     "cases":[{"name":"a","status":"passed","durationMs":\(number),
                               "steps":[{"name":"s","status":"passed","durationMs":\(number)}]}]}
                    """)
                #expect(reply.status == 422, "\(number): \(reply.text)")
                #expect(Set(reply.errorPointers) == ["/cases/0/durationMs", "/cases/0/steps/0/durationMs"], "\(number)")
            }
            // The server is still there, and nothing was stored.
            let runs = try await admin.get("/v1/projects/web/runs")
            #expect(runs.status == 200 && (runs.object["items"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func nulCharactersAreRefusedWithTheirPointerOrReplacedInFreeText() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let project = try await post(admin, "/v1/projects", #"{"slug":"w2","name":"bad\u0000name"}"#)
            #expect(project.status == 422 && project.errorPointers == ["/name"], "\(project.text)")
            let token = try await post(
                admin, "/v1/workspaces/default/tokens", #"{"name":"ci\u0000","class":"workspace","role":"member"}"#)
            #expect(token.status == 422 && token.errorPointers == ["/name"])
            let key = try await post(admin, "/v1/projects", #"{"slug":"w3","name":"ok","a\u0000":1}"#)
            #expect(key.status == 422 && key.errorPointers == ["/a\u{FFFD}"], "\(key.text)")

            // In a run: a NUL in a name or an id is refused; in an error message or trace it is replaced.
            let badName = try await post(
                admin, "/v1/ingest/kensho/finalize",
                #"{"schemaVersion":"kensho/v1","project":{"slug":"web"},"externalRunId":"r\u0000","branch":"main","totals":{"passed":0,"failed":1,"skipped":0,"broken":0},"cases":[{"name":"n\u0000","status":"failed"}]}"#)
            #expect(badName.status == 422)
            #expect(Set(badName.errorPointers) == ["/externalRunId", "/cases/0/name"], "\(badName.text)")
            let freeText = try await post(
                admin, "/v1/ingest/kensho/finalize",
                #"{"schemaVersion":"kensho/v1","project":{"slug":"web"},"externalRunId":"nul-ok","branch":"main","totals":{"passed":0,"failed":1,"skipped":0,"broken":0},"cases":[{"name":"n","status":"failed","error":{"type":"E","message":"got \u0000 here","trace":"at\u0000x"}}]}"#)
            #expect(freeText.status == 200, "\(freeText.text)")
            let runID = try #require(freeText.object["internalRunId"] as? String)
            let cases = try await admin.get("/v1/runs/\(runID)/cases").object["items"] as? [[String: Any]] ?? []
            let error = cases.first?["error"] as? [String: Any]
            #expect((error?["message"] as? String) == "got \u{FFFD} here", "\(cases)")
            #expect((error?["trace"] as? String) == "at\u{FFFD}x")

            // Query parameters: 400 naming the parameter.
            for parameter in ["q", "label", "owner", "suite"] {
                let reply = try await admin.get("/v1/projects/web/cases?\(parameter)=a%00b")
                #expect(reply.status == 400 && reply.errorCode == "invalid_parameter", "\(parameter): \(reply.text)")
                #expect(reply.errorDetails?["parameter"] as? String == parameter)
            }
            let branch = try await admin.get("/v1/projects/web/runs?branch=%00")
            #expect(branch.status == 400 && branch.errorDetails?["parameter"] as? String == "branch")
        }
    }

    @Test func likeWildcardsInTextSearchAreLiteral() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let cases = [testCase("plain name", "passed"), testCase("with_underscore", "passed"), testCase("100% sure", "passed")]
            #expect(try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r1", cases: cases)).status == 200)
            try await waitForRollUps(admin, runs: 1)
            func names(_ q: String) async throws -> Set<String> {
                let items = try await admin.get("/v1/projects/web/cases?q=\(q)").object["items"] as? [[String: Any]] ?? []
                return Set(items.compactMap { $0["name"] as? String })
            }
            #expect(try await names("_") == ["with_underscore"])
            #expect(try await names("%25") == ["100% sure"])
            #expect(try await names("name") == ["plain name"])
        }
    }

    @Test func badParametersAre400NamingTheParameter() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let checks: [(String, String)] = [
                ("/v1/workspaces/default/jobs?state=null", "state"),
                ("/v1/projects/web/runs?limit=0", "limit"),
                ("/v1/projects/web/runs?limit=99999999999999999999999", "limit"),
                ("/v1/projects/web/cases?flaky=maybe", "flaky"),
                ("/v1/projects/web/cases?sort=sideways", "sort"),
                ("/v1/projects/web/analytics?window=2d", "window"),
                ("/v1/projects/web/runs?cursor=garbage", "cursor"),
                ("/v1/projects/web/cases?cursor=garbage", "cursor"),
                ("/v1/projects/web/defects?cursor=garbage", "cursor"),
                ("/v1/projects/web/events?cursor=garbage", "cursor"),
                ("/v1/projects/web/flaky?cursor=garbage", "cursor"),
                ("/v1/projects/web/failure-groups?cursor=garbage", "cursor"),
            ]
            for (path, parameter) in checks {
                let reply = try await admin.get(path)
                #expect(reply.status == 400, "\(path): \(reply.text)")
                #expect(reply.errorDetails?["parameter"] as? String == parameter, "\(path): \(reply.text)")
                #expect(reply.errorPointers == ["/\(parameter)"], "\(path)")
            }
        }
    }

    @Test func bodiesMustSayTheyAreJSON() async throws {
        try await withServer { _, admin in
            let none = try await admin.send(.POST, "/v1/projects", body: Data(#"{"slug":"web","name":"Web"}"#.utf8), contentType: "")
            #expect(none.status == 415, "\(none.text)")
            let text = try await admin.post("/v1/projects", raw: Data(#"{"slug":"web","name":"Web"}"#.utf8), contentType: "text/plain")
            #expect(text.status == 415 && text.errorCode == "unsupported_media_type")
            let charset = try await admin.post(
                "/v1/projects", raw: Data(#"{"slug":"web","name":"Web"}"#.utf8), contentType: "application/json; charset=utf-8")
            #expect(charset.status == 201)
        }
    }

    @Test func headersEveryAnswerCarries() async throws {
        try await withServer { server, admin in
            let minted = try await admin.post("/v1/workspaces/default/tokens", json: ["name": "ci", "class": "workspace", "role": "member"])
            #expect(minted.status == 201)
            #expect(minted.headers.first(name: "Cache-Control") == "no-store")
            #expect(minted.headers.first(name: "X-Content-Type-Options") == "nosniff")
            let missing = try await admin.get("/v1/nowhere")
            #expect(missing.status == 404 && missing.headers.first(name: "X-Content-Type-Options") == "nosniff")
            // Stable, readable JSON: sorted keys, unescaped slashes.
            let document = try await admin.get("/v1/openapi.json")
            #expect(!document.text.contains(#"\/"#))
            let me = try await admin.get("/v1/me").text
            let keys = ["token", "user", "workspaces"].compactMap { me.range(of: "\"\($0)\"")?.lowerBound }
            #expect(keys == keys.sorted())
            // Anonymous health answers tell no database address.
            let health = try await APIClient(baseURL: server.baseURL, token: nil).get("/healthz")
            #expect(health.status == 200 && !health.text.contains("postgres") && !health.text.contains("127.0.0.1"), "\(health.text)")
        }
    }

    @Test func attachmentIdsAndUploadsAndStepDurations() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let png = Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3])
            let unsafe = try await admin.post(
                "/v1/ingest/kensho/init",
                json: ["projectSlug": "web", "externalRunId": "r", "attachments": [
                    ["id": "..", "sha256": sha256Hex(png), "size": png.count, "contentType": "image/png"],
                    ["id": ".", "sha256": sha256Hex(png), "size": png.count, "contentType": "image/png"],
                ]])
            #expect(unsafe.status == 422 && unsafe.errorPointers == ["/attachments/0/id", "/attachments/1/id"], "\(unsafe.text)")
            let started = try await admin.post(
                "/v1/ingest/kensho/init",
                json: ["projectSlug": "web", "externalRunId": "r", "attachments": [
                    ["id": "shot.png", "sha256": sha256Hex(png), "size": png.count, "contentType": "image/png"],
                ]])
            let url = try #require((started.object["presigned"] as? [[String: Any]])?.first?["url"] as? String)
            // Sent with its own type, as to an S3 presigned URL.
            let uploaded = try await put(url, png, contentType: "image/png")
            #expect(uploaded.status == 201, "\(uploaded.text)")

            var item = testCase("a", "passed")
            item["steps"] = [["name": "s", "status": "passed", "durationMs": -5]]
            let negative = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "neg", cases: [item]))
            #expect(negative.status == 422 && negative.errorPointers == ["/cases/0/steps/0/durationMs"], "\(negative.text)")
        }
    }
}
