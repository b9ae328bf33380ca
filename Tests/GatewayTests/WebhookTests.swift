import ChildProcess
import Domains
import Foundation
import KaizenServer
import KaizenTestSupport
import Logging
import PostgresNIO
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Webhooks end to end: registered through the API, written to the outbox with their events, delivered by
/// the server's sender to a real receiver on loopback that verifies the signature — README's receiver.
@Suite struct WebhookTests {
    static func loopback(_ config: inout KaizenConfiguration) {
        config.webhookAllowHTTP = true
        config.webhookNetworks = try! NetworkPolicy.parse("127.0.0.0/8")
        config.webhookFirstRetrySeconds = 0.2
    }

    @Test func deliveriesAreSignedOrderedAndVisibleAndRotationKeepsBothSecrets() async throws {
        try await withServer(configure: Self.loopback) { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            // The receiver's port first, then the hook, then the receiver with the hook's secret.
            let port = freeLoopbackPort()
            let created = try await admin.post(
                "/v1/projects/web/webhooks",
                json: ["url": "http://127.0.0.1:\(port)/hook", "events": ["run.finalized", "run.gate_failed"], "description": "CI bot"])
            #expect(created.status == 201, "\(created.text)")
            let secret = try #require(created.object["secret"] as? String)
            let hook = try #require(created.object["webhook"] as? [String: Any])
            let hookID = try #require(hook["id"] as? String)
            #expect(secret.hasPrefix("whsec_") && hook["format"] as? String == "kaizen" && hook["active"] as? Bool == true)
            // The secret is never shown again.
            let read = try await admin.get("/v1/webhooks/\(hookID)")
            #expect(read.status == 200 && !read.text.contains(secret))

            var env = ["KAIZEN_WEBHOOK_SECRET": secret, "PORT": String(port)]
            let program = try Receiver.readmeProgram
            var receiver = try await Receiver.start(program, port: port, environment: env)
            defer { receiver.stop() }

            // Three runs, pushed one after another: delivered in order, each once, each verified.
            var runIDs: [String] = []
            for n in 1...3 {
                let reply = try await admin.post(
                    "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r\(n)", cases: [testCase("a", n == 2 ? "failed" : "passed")]))
                runIDs.append(try #require(reply.object["internalRunId"] as? String))
            }
            try await waitUntil("three deliveries arrived") { receiver.lines.count >= 3 }
            let lines = receiver.lines
            #expect(lines.count == 3 && lines.allSatisfy { $0.hasPrefix("run.finalized dlv_") }, "\(lines)")
            #expect(Set(lines).count == 3)

            // The receiver answered before the sender recorded it: wait for the records.
            var deliveries: [[String: Any]] = []
            try await waitUntil("three deliveries recorded") {
                deliveries = try await admin.get("/v1/webhooks/\(hookID)/deliveries").object["items"] as? [[String: Any]] ?? []
                return deliveries.count == 3 && deliveries.allSatisfy { $0["state"] as? String == "delivered" }
            }
            #expect(deliveries.allSatisfy { $0["responseStatus"] as? Int == 204 && $0["latencyMs"] is Int })
            // Newest first; the receiver saw them oldest first.
            #expect(deliveries.compactMap { $0["id"] as? String }.reversed() == lines.map { String($0.split(separator: " ")[1]) })

            // Rotation: the receiver still on the old secret accepts (both signatures are sent)...
            let rotated = try await admin.post("/v1/webhooks/\(hookID)/rotate-secret", json: ["graceSeconds": 3600])
            #expect(rotated.status == 200, "\(rotated.text)")
            let newSecret = try #require(rotated.object["secret"] as? String)
            #expect(newSecret != secret && (rotated.object["webhook"] as? [String: Any])?["previousSecretValidUntil"] is String)
            let ping = try await admin.post("/v1/webhooks/\(hookID)/ping", json: [String: Any]())
            #expect(ping.status == 202, "\(ping.text)")
            try await waitUntil("the ping arrived under the old secret") { receiver.lines.contains { $0.hasPrefix("webhook.ping") } }
            // ...and so does one switched to the new secret.
            receiver.stop()
            env["KAIZEN_WEBHOOK_SECRET"] = newSecret
            receiver = try await Receiver.start(program, port: port, environment: env)
            try await admin.post("/v1/webhooks/\(hookID)/ping", json: [String: Any]()).expect(202)
            try await waitUntil("the ping arrived under the new secret") { receiver.lines.contains { $0.hasPrefix("webhook.ping") } }

            // A receiver with a wrong secret refuses (401): the delivery fails there, and is visible as such.
            receiver.stop()
            env["KAIZEN_WEBHOOK_SECRET"] = "whsec_wrong"
            receiver = try await Receiver.start(program, port: port, environment: env)
            let refused = try await admin.post("/v1/webhooks/\(hookID)/ping", json: [String: Any]())
            let refusedID = try #require(refused.object["id"] as? String)
            try await waitUntil("the refused ping is recorded") {
                let items = try await admin.get("/v1/webhooks/\(hookID)/deliveries?limit=1").object["items"] as? [[String: Any]] ?? []
                return items.first?["id"] as? String == refusedID && items.first?["state"] as? String == "failed"
            }
            #expect(receiver.lines.isEmpty)
        }
    }

    @Test func aReceiverThatFailsThenRecoversGetsEachEventOnceInOrder() async throws {
        // 500 for the first request, then 204: one success after the backoff, and the next event waits its turn.
        let flaky = """
            import os
            from http.server import BaseHTTPRequestHandler, HTTPServer
            seen = []
            class R(BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers["Content-Length"]))
                    seen.append(self.headers["Kaizen-Delivery"])
                    status = 500 if len(seen) == 1 else 204
                    self.send_response(status); self.end_headers()
                    print(status, self.headers["Kaizen-Event"], self.headers["Kaizen-Delivery"], flush=True)
            HTTPServer(("127.0.0.1", int(os.environ["PORT"])), R).serve_forever()
            """
        try await withServer(configure: Self.loopback) { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let receiver = try await Receiver.start(flaky)
            defer { receiver.stop() }
            let created = try await admin.post("/v1/projects/web/webhooks", json: ["url": receiver.url, "events": ["run.finalized"]])
            let hookID = try #require((created.object["webhook"] as? [String: Any])?["id"] as? String)
            for n in 1...2 {
                try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r\(n)", cases: [testCase("a", "passed")]))
                    .expect(200)
            }
            try await waitUntil("both events delivered") { receiver.lines.filter { $0.hasPrefix("204") }.count == 2 }
            let lines = receiver.lines
            // The first delivery: 500, then 204 (same id); only then the second.
            #expect(lines.count == 3, "\(lines)")
            let ids = lines.map { String($0.split(separator: " ")[2]) }
            #expect(lines.first?.hasPrefix("500") == true && ids[0] == ids[1] && ids[2] != ids[0], "\(lines)")
            var deliveries: [[String: Any]] = []
            try await waitUntil("both deliveries recorded") {
                deliveries = try await admin.get("/v1/webhooks/\(hookID)/deliveries").object["items"] as? [[String: Any]] ?? []
                return deliveries.count == 2 && deliveries.allSatisfy { $0["state"] as? String == "delivered" }
            }
            #expect(deliveries.map { $0["attempts"] as? Int } == [1, 2])

            // Redelivered on request: the same id again.
            try await admin.post("/v1/webhooks/\(hookID)/deliveries/\(ids[0])/redeliver", json: [String: Any]()).expect(202)
            try await waitUntil("the redelivery arrived") { receiver.lines.count == 4 }
            #expect(receiver.lines.last?.hasSuffix(ids[0]) == true)
        }
    }

    /// The outbox is written in the finalize's transaction: a finalize that fails at commit (a deferred trigger
    /// refuses the run) leaves no event and no delivery, and the receiver hears only of the runs that were stored.
    @Test func aRolledBackFinalizeDeliversNothing() async throws {
        let trap: [PostgresQuery] = [
            """
            CREATE OR REPLACE FUNCTION kaizen_test_doom() RETURNS trigger AS $$
            BEGIN
                IF NEW.external_run_id = 'doomed' THEN RAISE EXCEPTION 'injected failure at commit'; END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql
            """,
            """
            CREATE CONSTRAINT TRIGGER kaizen_test_doom AFTER INSERT ON runs DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION kaizen_test_doom()
            """,
        ]
        try await withServer(configure: Self.loopback) { server, admin in
            for physical in server.cluster.servers {
                for statement in trap { _ = try await physical.run { try await $0.query(statement, logger: Logger(label: "test")) } }
            }
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let port = freeLoopbackPort()
            let created = try await admin.post(
                "/v1/projects/web/webhooks", json: ["url": "http://127.0.0.1:\(port)/hook", "events": ["run.finalized"]])
            let secret = try #require(created.object["secret"] as? String)
            let receiver = try await Receiver.start(try Receiver.readmeProgram, port: port, environment: ["KAIZEN_WEBHOOK_SECRET": secret])
            defer { receiver.stop() }
            try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "kept-1", cases: [testCase("a", "passed")]))
                .expect(200)
            let doomed = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "doomed", cases: [testCase("a", "failed")]))
            #expect(doomed.status == 500, "\(doomed.text)")
            try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "kept-2", cases: [testCase("a", "passed")]))
                .expect(200)
            try await waitUntil("the two stored runs were delivered") { receiver.lines.count >= 2 }
            // Nothing of the failed finalize is anywhere: not its event, not a delivery.
            var events = 0, deliveries = 0
            for physical in server.cluster.servers {
                let counts = try await physical.run { connection -> (Int, Int) in
                    var e = 0, d = 0
                    for try await n in try await connection.query("SELECT count(*)::int FROM events WHERE kind = 'run.finalized'", logger: Logger(label: "test"))
                        .decode(Int.self) { e = n }
                    for try await n in try await connection.query("SELECT count(*)::int FROM webhook_deliveries", logger: Logger(label: "test"))
                        .decode(Int.self) { d = n }
                    return (e, d)
                }
                events += counts.0
                deliveries += counts.1
            }
            #expect(events == 2 && deliveries == 2)
            #expect(receiver.lines.count == 2)
        }
    }

    /// A receiver that answers 410 Gone is not sent to again: the hook is disabled and says why.
    @Test func goneDisablesTheHook() async throws {
        let gone = """
            import os
            from http.server import BaseHTTPRequestHandler, HTTPServer
            class R(BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers["Content-Length"]))
                    self.send_response(410); self.end_headers()
                    print(self.headers["Kaizen-Delivery"], flush=True)
            HTTPServer(("127.0.0.1", int(os.environ["PORT"])), R).serve_forever()
            """
        try await withServer(configure: Self.loopback) { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let ann = try await mint(admin, tokenClass: "user", role: "admin", user: "ann@example.com")
            let member = try await mint(admin, tokenClass: "user", role: "member", user: "bob@example.com")
            let receiver = try await Receiver.start(gone)
            defer { receiver.stop() }
            let created = try await admin.post("/v1/projects/web/webhooks", json: ["url": receiver.url, "events": ["run.finalized"]])
            let hookID = try #require((created.object["webhook"] as? [String: Any])?["id"] as? String)
            try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r1", cases: [testCase("a", "passed")])).expect(200)
            try await waitUntil("the hook is disabled") {
                try await admin.get("/v1/webhooks/\(hookID)").object["active"] as? Bool == false
            }
            let hook = try await admin.get("/v1/webhooks/\(hookID)")
            #expect((hook.object["disabledReason"] as? String ?? "").contains("410"), "\(hook.text)")
            // The project's admins are told (and a member, by default, is not).
            try await waitUntil("the admin is notified") {
                (try await ann.get("/v1/notifications").object["items"] as? [[String: Any]] ?? []).contains { $0["category"] as? String == "webhook_disabled" }
            }
            let notice = try #require((try await ann.get("/v1/notifications").object["items"] as? [[String: Any]])?.first)
            #expect((notice["body"] as? String ?? "").contains("410") && notice["severity"] as? String == "error", "\(notice)")
            #expect(try await member.get("/v1/notifications/unread").object["unread"] as? Int == 0)
            // Later events are not queued for it at all.
            try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r2", cases: [testCase("a", "passed")])).expect(200)
            let deliveries = try await admin.get("/v1/webhooks/\(hookID)/deliveries").object["items"] as? [[String: Any]] ?? []
            #expect(deliveries.count == 1 && deliveries.first?["state"] as? String == "failed" && deliveries.first?["responseStatus"] as? Int == 410)
            #expect(receiver.lines.count == 1)
        }
    }

    @Test func internalDestinationsAreRefusedWithoutTrafficUnlessAllowed() async throws {
        try await withServer(configure: { $0.webhookAllowHTTP = true; $0.webhookFirstRetrySeconds = 0.2 }) { _, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let receiver = try await Receiver.start(try Receiver.readmeProgram, environment: ["KAIZEN_WEBHOOK_SECRET": "x"])
            defer { receiver.stop() }
            let targets = [
                "http://127.0.0.1:\(receiver.port)/hook": "loopback", "http://localhost:\(receiver.port)/hook": "loopback",
                "http://169.254.169.254/latest/meta-data": "link-local", "http://10.0.0.1/hook": "private",
                "http://[::1]:\(receiver.port)/hook": "loopback",
            ]
            var hooks: [String: String] = [:]
            for (url, _) in targets {
                let created = try await admin.post("/v1/projects/web/webhooks", json: ["url": url, "events": ["run.finalized"]])
                #expect(created.status == 201, "\(created.text)")
                hooks[url] = (created.object["webhook"] as? [String: Any])?["id"] as? String
            }
            try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r1", cases: [testCase("a", "passed")])).expect(200)
            for (url, kind) in targets {
                let hookID = try #require(hooks[url])
                try await waitUntil("\(url) is refused") {
                    let item = (try await admin.get("/v1/webhooks/\(hookID)/deliveries").object["items"] as? [[String: Any]])?.first
                    return item?["state"] as? String == "failed" && (item?["error"] as? String ?? "").contains(kind)
                }
            }
            #expect(receiver.lines.isEmpty, "a refused destination was sent to")

            // Bad registrations: pointers, nothing written.
            let bad = try await admin.post(
                "/v1/projects/web/webhooks", json: ["url": "ftp://example.com", "events": ["run.finalized", "nope"], "format": "xml"])
            #expect(bad.status == 422 && Set(bad.errorPointers) == ["/url", "/events/1", "/format"], "\(bad.text)")
            let listed = try await admin.get("/v1/projects/web/webhooks").array
            #expect(listed.count == targets.count)
        }
    }

    @Test func webhooksAreAdminsOnlyAndOtherTenantsGet404() async throws {
        try await withServer(configure: Self.loopback) { server, admin in
            try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).expect(201)
            let created = try await admin.post(
                "/v1/projects/web/webhooks", json: ["url": "https://hooks.example.com/x", "events": ["defect.opened"], "format": "slack"])
            let hookID = try #require((created.object["webhook"] as? [String: Any])?["id"] as? String)
            let member = try await mint(admin, role: "member")
            #expect(try await member.get("/v1/webhooks/\(hookID)").status == 403)
            #expect(try await member.post("/v1/projects/web/webhooks", json: ["url": "https://x.example.com", "events": ["run.finalized"]]).status == 403)
            // Another workspace's admin: the hook does not exist for them.
            let other = try await server.cluster.catalog.createWorkspace(slug: "other", name: "Other")
            let (_, secret) = try await server.cluster.catalog.createToken(
                .init(name: "ci", tokenClass: .workspace, workspaceID: other.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
            let stranger = admin.with(token: secret)
            #expect(try await stranger.get("/v1/webhooks/\(hookID)").status == 404)
            #expect(try await stranger.get("/v1/webhooks/\(hookID)/deliveries").status == 404)
            #expect(try await stranger.post("/v1/webhooks/\(hookID)/ping", json: [String: Any]()).status == 404)
            let patched = try await admin.send(
                .PATCH, "/v1/webhooks/\(hookID)",
                body: try JSONSerialization.data(withJSONObject: ["active": false, "events": ["defect.opened", "flaky.detected"]]))
            #expect(patched.status == 200 && patched.object["active"] as? Bool == false, "\(patched.text)")
            #expect(try await admin.send(.DELETE, "/v1/webhooks/\(hookID)").status == 204)
            #expect(try await admin.get("/v1/webhooks/\(hookID)").status == 404)
        }
    }
}

