import Foundation
import KaizenTestSupport
import Testing

/// Issue 17's inbox (seed 004): notifications made from the project's events by each person's choices, read,
/// marked, deleted, paged and streamed — through the API, over real sockets.
@Suite struct NotificationTests {
    static func items(_ client: APIClient, _ query: String = "") async throws -> [[String: Any]] {
        let reply = try await client.get("/v1/notifications\(query)")
        #expect(reply.status == 200, "\(reply.text)")
        return reply.object["items"] as? [[String: Any]] ?? []
    }

    static func unread(_ client: APIClient) async throws -> Int {
        try await client.get("/v1/notifications/unread").object["unread"] as? Int ?? -1
    }

    @Test func newFailuresReachTheirPeopleByTheirChoicesAndTheInboxWorks() async throws {
        try await withServer(configure: { $0.streamHeartbeatSeconds = 0.2 }) { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let ann = try await mint(admin, tokenClass: "user", role: "admin", user: "ann@example.com")
            let bob = try await mint(admin, tokenClass: "user", role: "member", user: "bob@example.com")

            // What each starts with: an admin hears about breakage, a member opts in.
            let annPrefs = try await ann.get("/v1/projects/web/notification-preferences")
            #expect(annPrefs.object["categories"] as? [String] == ["gate_failed", "new_failures", "webhook_disabled"], "\(annPrefs.text)")
            #expect(annPrefs.object["default"] as? Bool == true)
            #expect(try await bob.get("/v1/projects/web/notification-preferences").object["categories"] as? [String] == [])

            try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r1", cases: [testCase("a", "passed"), testCase("b", "passed")])).expect(200)
            let r2 = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r2", cases: [testCase("a", "failed"), testCase("b", "passed")]))
            let r2ID = try #require(r2.object["internalRunId"] as? String)
            // A failure on another branch is nobody's notification (only the default branch's are).
            try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "f1", branch: "feature", cases: [testCase("b", "failed")])).expect(200)

            try await waitUntil("ann is notified of r2's new failure") { try await Self.unread(ann) == 1 }
            let first = try #require(try await Self.items(ann).first)
            #expect(first["category"] as? String == "new_failures" && first["severity"] as? String == "error")
            #expect(first["title"] as? String == "1 new failure on main in web", "\(first)")
            #expect(first["url"] as? String == "/runs/\(r2ID)" && first["project"] as? String == "web" && first["workspace"] as? String == "default")
            #expect(first["read"] as? Bool == false && (first["body"] as? String ?? "").contains("a"))
            #expect(try await Self.unread(bob) == 0, "a member gets nothing until they choose")

            // Bob opts in; a wrong name is refused at its pointer, and nothing changes.
            let bad = try await bob.put("/v1/projects/web/notification-preferences", json: ["categories": ["new_failures", "bogus"]])
            #expect(bad.status == 422 && bad.errorPointers == ["/categories/1"], "\(bad.text)")
            let chose = try await bob.put("/v1/projects/web/notification-preferences", json: ["categories": ["new_failures"]])
            #expect(chose.status == 200 && chose.object["categories"] as? [String] == ["new_failures"] && chose.object["default"] as? Bool == false)

            // Bob's stream, open before the next failure: it arrives as `event: notification` with its seq as id.
            let (stream, _) = try await EventStreamClient.open(bob, "/v1/notifications/stream")
            try await stream.wait("connected") { _ in true }
            try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r3", cases: [testCase("a", "failed"), testCase("b", "failed")])).expect(200)
            let streamed = try await stream.wait("bob's notification") { !$0.isEmpty }
            stream.close()
            #expect(streamed.count == 1 && streamed[0].event == "notification")
            let seq3 = try #require(streamed[0].id)
            #expect(streamed[0].object["title"] as? String == "1 new failure on main in web" && streamed[0].object["seq"] as? Int == Int(seq3))
            try await waitUntil("ann has r3's too") { try await Self.unread(ann) == 2 }

            // Reading, marking, deleting — each person's own only.
            let annItems = try await Self.items(ann)
            #expect(annItems.count == 2)
            let newest = try #require(annItems.first?["id"] as? String)
            let bobsOwn = try #require(streamed[0].object["id"] as? String)
            try await ann.patch("/v1/notifications/\(newest)/read", json: [String: Any]()).expect(204)
            #expect(try await Self.unread(ann) == 1)
            #expect(try await Self.items(ann, "?unread=true").count == 1)
            #expect(try await ann.patch("/v1/notifications/\(bobsOwn)/read", json: [String: Any]()).status == 404, "another person's is not found")
            #expect(try await ann.delete("/v1/notifications/\(bobsOwn)").status == 404)
            #expect(try await ann.patch("/v1/notifications/ntf_nope/read", json: [String: Any]()).status == 404)
            // Pages.
            let page = try await ann.get("/v1/notifications?limit=1")
            let cursor = try #require(page.object["nextCursor"] as? String)
            let second = try await ann.get("/v1/notifications?limit=1&cursor=\(cursor)").object["items"] as? [[String: Any]] ?? []
            #expect(second.first?["id"] as? String == annItems[1]["id"] as? String)
            #expect(try await ann.get("/v1/notifications?limit=0").status == 400)
            let marked = try await ann.post("/v1/notifications/read", json: [String: Any]())
            #expect(marked.status == 200 && marked.object["marked"] as? Int == 1)
            #expect(try await Self.unread(ann) == 0)
            try await ann.delete("/v1/notifications/\(newest)").expect(204)
            #expect(try await Self.items(ann).count == 1)

            // Ann mutes the project: the next failure reaches bob only (one notifier transaction decides both).
            try await ann.put("/v1/projects/web/notification-preferences", json: ["categories": [String]()]).expect(200)
            try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "r4", cases: [testCase("a", "failed"), testCase("b", "failed"), testCase("c", "failed")])).expect(200)
            try await waitUntil("bob has r4's") { try await Self.unread(bob) == 2 }
            #expect(try await Self.items(ann).count == 1)
            // Back to the defaults with null.
            let reset = try await ann.put("/v1/projects/web/notification-preferences", json: ["categories": NSNull()])
            #expect(reset.object["default"] as? Bool == true && (reset.object["categories"] as? [String])?.contains("new_failures") == true)

            // Bob's stream resumed after r3's notification gets r4's only.
            let (resumed, _) = try await EventStreamClient.open(bob, "/v1/notifications/stream", lastEventID: seq3)
            defer { resumed.close() }
            let rest = try await resumed.wait("r4's notification") { !$0.isEmpty }
            #expect(rest.count == 1 && (rest[0].object["title"] as? String) == "1 new failure on main in web" && rest[0].id != seq3)

            // Notifications are people's: a workspace token has none.
            let refused = try await admin.get("/v1/notifications")
            #expect(refused.status == 403, "\(refused.text)")
            let (tokenStream, _) = try await EventStreamClient.open(admin, "/v1/notifications/stream")
            #expect(tokenStream.status == 403)
        }
    }
}
