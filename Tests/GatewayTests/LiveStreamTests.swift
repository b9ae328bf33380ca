import Foundation
import KaizenServer
import KaizenTestSupport
import Testing

/// Issue 17's live streams over real sockets: `GET /v1/events/stream` (stored events in commit order, resumed
/// with `Last-Event-ID` without gaps or repeats, ingest progress, only readable projects, keep-alives, the end of
/// a revoked token's stream) and the same stream held on another node.
@Suite struct LiveStreamTests {
    static func fastHeartbeat(_ config: inout KaizenConfiguration) {
        config.streamHeartbeatSeconds = 0.2
    }

    /// Every stored event, oldest first, read from the start of the log (`?after=0`) — the truth a resumed
    /// stream is compared with.
    static func wholeLog(_ client: APIClient, count: Int) async throws -> [ServerSentEvent] {
        let (all, error) = try await EventStreamClient.open(client, "/v1/events/stream?after=0&kind=run.finalized&kind=run.rolled_up")
        #expect(all.status == 200, "\(error ?? "")")
        defer { all.close() }
        do {
            return try await all.wait("the whole log (\(count) events)") { $0.count >= count }
        } catch {
            Issue.record("the log had \(all.events.count) events: \(all.events.map { "\($0.id ?? "-") \($0.event)" })")
            throw error
        }
    }

    @Test func aResumedStreamLosesAndRepeatsNothingWhileRunsCommitConcurrently() async throws {
        try await withServer(configure: Self.fastHeartbeat) { server, admin in
            for slug in ["a", "b", "c", "d"] {
                try await admin.post("/v1/projects", json: ["slug": slug, "name": slug.uppercased()]).expect(201)
            }
            let (first, error) = try await EventStreamClient.open(admin, "/v1/events/stream")
            #expect(first.status == 200 && error == nil, "\(error ?? "")")
            #expect(first.headers["Content-Type"].first?.hasPrefix("text/event-stream") == true)
            #expect(first.headers["Cache-Control"].first == "no-store")

            // Four projects push at once, five runs each: the stream is dropped halfway and resumed.
            @Sendable func push(_ slug: String, _ n: Int) async throws {
                let reply = try await admin.post(
                    "/v1/ingest/kensho/finalize",
                    json: runDocument(project: slug, externalRunId: "\(slug)\(n)", cases: [testCase("t\(n)", n % 2 == 0 ? "failed" : "passed")]))
                #expect(reply.status == 200, "\(reply.text)")
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for slug in ["a", "b", "c", "d"] { group.addTask { for n in 1...2 { try await push(slug, n) } } }
                try await group.waitForAll()
            }
            let before = try await first.wait("some stored events") { $0.filter { $0.id != nil }.count >= 4 }
            first.close()
            let seen = first.events.filter { $0.id != nil }
            let lastID = try #require(seen.last?.id)
            // Ids only grow within a stream.
            let positions = seen.compactMap { $0.id.flatMap(Int64.init) }
            #expect(positions == positions.sorted() && Set(positions).count == positions.count, "\(positions)")
            _ = before

            try await withThrowingTaskGroup(of: Void.self) { group in
                for slug in ["a", "b", "c", "d"] { group.addTask { for n in 3...5 { try await push(slug, n) } } }
                try await group.waitForAll()
            }
            // 20 runs: 20 run.finalized and 20 run.rolled_up in the log.
            try await waitForRollUps(admin, runs: 20)
            let log = try await Self.wholeLog(admin, count: 40).filter { $0.id != nil }
            #expect(log.count == 40)

            let (resumed, _) = try await EventStreamClient.open(admin, "/v1/events/stream", lastEventID: lastID)
            defer { resumed.close() }
            let expectedAfter = log.filter { Int64($0.id!)! > Int64(lastID)! }
            try await resumed.wait("the rest of the log") { $0.filter { $0.id != nil }.count >= expectedAfter.count }
            let rest = resumed.events.filter { $0.id != nil }
            // Nothing lost, nothing twice: what the first stream saw plus what the resumed one did is the log.
            let firstStored = seen.filter { $0.event == "run.finalized" || $0.event == "run.rolled_up" }
            #expect((firstStored + rest).map(\.id) == log.map(\.id), "first \(firstStored.map(\.id)) rest \(rest.map(\.id)) log \(log.map(\.id))")
            #expect(Set(rest.map(\.id)).isDisjoint(with: Set(seen.map(\.id))))
            // Each event says what it is about.
            let finalized = try #require(rest.first { $0.event == "run.finalized" })
            let object = finalized.object
            #expect(object["kind"] as? String == "run.finalized" && ["a", "b", "c", "d"].contains(object["project"] as? String ?? ""))
            #expect((object["payload"] as? [String: Any])?["runId"] as? String == object["subjectId"] as? String)
            #expect(object["position"] as? Int == Int(finalized.id!))

            // A stream a client dropped leaves nothing behind on the server.
            resumed.close()
            try await waitUntil("dropped streams are unsubscribed") { server.registry.live.subscriberCount == 0 }
        }
    }

    @Test func pushesShowTheirProgressAndTheRollUpsEnd() async throws {
        try await withServer(configure: Self.fastHeartbeat) { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let (stream, _) = try await EventStreamClient.open(admin, "/v1/events/stream?project=web")
            defer { stream.close() }
            // An attachment through init and upload, then the finalize.
            let bytes = Data("log line\n".utf8)
            let sha = sha256Hex(bytes)
            let initReply = try await admin.post(
                "/v1/ingest/kensho/init",
                json: ["projectSlug": "web", "externalRunId": "r1",
                       "attachments": [["id": "log", "sha256": sha, "size": bytes.count, "contentType": "text/plain"]]])
            #expect(initReply.status == 200, "\(initReply.text)")
            let uploadID = try #require(initReply.object["uploadId"] as? String)
            let target = try #require((initReply.object["presigned"] as? [[String: Any]])?.first?["url"] as? String)
            let path = String(target.dropFirst(admin.baseURL.count))
            try await admin.put(path, raw: bytes).expect(201)
            let finalized = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "r1", cases: [testCase("a", "failed", attachments: ["log"])], uploadId: uploadID))
            #expect(finalized.status == 200, "\(finalized.text)")
            let runID = try #require(finalized.object["internalRunId"] as? String)
            // A refused push says why.
            try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "", cases: [])).expect(422)

            let events = try await stream.wait("the push's phases, its roll-up and the refusal") { events in
                events.contains { $0.event == "run.rolled_up" } && events.contains { $0.object["phase"] as? String == "failed" }
            }
            let phases = events.filter { $0.event == "ingest.progress" }.compactMap { $0.object["phase"] as? String }
            #expect(phases == ["initialized", "uploaded", "validating", "storing", "finalized", "validating", "failed"], "\(phases)")
            #expect(events.filter { $0.event == "ingest.progress" }.allSatisfy { $0.id == nil }, "progress is not stored: no id")
            let done = try #require(events.first { $0.object["phase"] as? String == "finalized" }).object
            #expect(done["runId"] as? String == runID && done["status"] as? String == "failed" && done["cases"] as? Int == 1)
            let failed = try #require(events.first { $0.object["phase"] as? String == "failed" }).object
            #expect((failed["message"] as? String)?.isEmpty == false)
            // Stored events come in order: the finalize, then its roll-up.
            let stored = events.filter { $0.id != nil }.map(\.event)
            #expect(stored == ["run.finalized", "run.rolled_up"], "\(stored)")
        }
    }

    @Test func readersSeeOnlyTheirProjectsAndBadInputIsRefused() async throws {
        try await withServer(configure: Self.fastHeartbeat) { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            try await admin.post("/v1/projects", json: ["slug": "secret", "name": "Secret", "accessMode": "private"]).expect(201)
            let member = try await mint(admin, tokenClass: "user", role: "member", user: "bob@example.com")
            let (memberStream, _) = try await EventStreamClient.open(member, "/v1/events/stream")
            defer { memberStream.close() }
            let (kinds, _) = try await EventStreamClient.open(admin, "/v1/events/stream?kind=run.finalized")
            defer { kinds.close() }
            for (slug, id) in [("secret", "s1"), ("web", "w1")] {
                try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(project: slug, externalRunId: id, cases: [testCase("a", "passed")]))
                    .expect(200)
            }
            try await waitForRollUps(admin, runs: 2)
            try await kinds.wait("both runs finalized") { $0.count >= 2 }
            // Then one more web run: once it shows on the member's stream, anything of "secret" would have too.
            try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "w2", cases: [testCase("a", "passed")])).expect(200)
            let seen = try await memberStream.wait("web's runs") { events in
                events.filter { $0.event == "run.rolled_up" }.count >= 2
            }
            #expect(seen.allSatisfy { ($0.object["project"] as? String) == "web" }, "\(seen.map(\.data))")
            #expect(kinds.events.allSatisfy { $0.event == "run.finalized" }, "\(kinds.events.map(\.event))")
            #expect(Set(kinds.events.compactMap { $0.object["project"] as? String }) == ["web", "secret"])

            // Refusals: the envelope, with what is wrong.
            let (badID, body1) = try await EventStreamClient.open(admin, "/v1/events/stream", lastEventID: "12x")
            #expect(badID.status == 400 && (body1 ?? "").contains("Last-Event-ID"), "\(body1 ?? "")")
            let (badAfter, body2) = try await EventStreamClient.open(admin, "/v1/events/stream?after=-1")
            #expect(badAfter.status == 400 && (body2 ?? "").contains("after"), "\(body2 ?? "")")
            let (unknown, _) = try await EventStreamClient.open(admin, "/v1/events/stream?project=nope")
            #expect(unknown.status == 404)
            let (hidden, _) = try await EventStreamClient.open(member, "/v1/events/stream?project=secret")
            #expect(hidden.status == 404, "a private project is not the member's to know about")
            let (badKind, body3) = try await EventStreamClient.open(admin, "/v1/events/stream?kind=run.deleted")
            #expect(badKind.status == 400 && (body3 ?? "").contains("kind"), "\(body3 ?? "")")
            let (anonymous, _) = try await EventStreamClient.open(admin.with(token: nil), "/v1/events/stream")
            #expect(anonymous.status == 401)
        }
    }

    @Test func keepAlivesFlowAndARevokedTokensStreamEnds() async throws {
        try await withServer(configure: Self.fastHeartbeat) { server, admin in
            let created = try await admin.post("/v1/workspaces/default/tokens", json: ["name": "dash", "class": "workspace", "role": "viewer"])
            let tokenID = try #require(created.object["id"] as? String)
            let viewer = admin.with(token: try #require(created.object["secret"] as? String))
            let (stream, _) = try await EventStreamClient.open(viewer, "/v1/events/stream")
            try await waitUntil("keep-alives arrive") { stream.keepAlives >= 2 }
            #expect(!stream.hasEnded)
            try await admin.delete("/v1/workspaces/default/tokens/\(tokenID)").expect(200)
            try await waitUntil("the revoked token's stream ends") { stream.hasEnded }
            try await waitUntil("and leaves nothing behind") { server.registry.live.subscriberCount == 0 }

            // A member demoted to viewer: the stream opened as a member ends too (the role it was opened with is gone).
            let bob = try await mint(admin, tokenClass: "user", role: "member", user: "bob@example.com")
            let (bobStream, _) = try await EventStreamClient.open(bob, "/v1/events/stream")
            try await waitUntil("bob's keep-alives arrive") { bobStream.keepAlives >= 1 }
            let members = try await admin.get("/v1/workspaces/default/members").array
            let bobUser = members.compactMap { $0["user"] as? [String: Any] }.first { $0["email"] as? String == "bob@example.com" }
            let bobID = try #require(bobUser?["id"] as? String, "\(members)")
            try await admin.patch("/v1/workspaces/default/members/\(bobID)", json: ["role": "viewer"]).expect(200)
            try await waitUntil("the demoted member's stream ends") { bobStream.hasEnded }
        }
    }

    /// Several nodes: a run committed through node A reaches a stream held on node B (LISTEN/NOTIFY wakes B,
    /// the log is what B sends), and so does A's ingest progress.
    @Test func anEventCommittedOnOneNodeReachesAStreamOnAnother() async throws {
        try await withServer(configure: Self.fastHeartbeat) { nodeA, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            // A second node on the same databases and data directory (attachments on a shared disk).
            let nodeB = try await TestServer.start(config: nodeA.config)
            do {
                let onB = APIClient(baseURL: nodeB.baseURL, token: admin.token)
                let (stream, _) = try await EventStreamClient.open(onB, "/v1/events/stream")
                defer { stream.close() }
                try await stream.wait("connected") { _ in true }
                let pushed = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r1", cases: [testCase("a", "passed")]))
                let runID = try #require(pushed.object["internalRunId"] as? String)
                let events = try await stream.wait("node A's run on node B's stream") { events in
                    events.contains { $0.event == "run.rolled_up" } && events.contains { $0.object["phase"] as? String == "finalized" }
                }
                #expect(events.first { $0.event == "run.finalized" }?.object["subjectId"] as? String == runID)
                // Relayed once: node B's own hub does not echo it back.
                #expect(events.filter { $0.object["phase"] as? String == "finalized" }.count == 1)
            }
            await nodeB.stop()
        }
    }
}
