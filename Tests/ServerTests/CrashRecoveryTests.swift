import Dispatch
import Foundation
import KaizenServer
import KaizenTestSupport
import Logging
import PostgresNIO
import Storage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 11 §6: a node killed with -9 in the middle of a roll-up. Its job lease lapses and the job
/// runs again elsewhere within seconds; the roll-up of the project's next run waits for it without
/// spending attempts, and the two roll up in finalize order.
@Suite(.serialized) struct CrashRecoveryTests {
    static let logger = Logger(label: "kaizen.tests")

    @Test func aKilledNodesJobsAreTakenBackAndRollUpsKeepTheirOrder() async throws {
        let urls = try await TestPostgres.shared.freshDatabases()
        let dataDir = NSTemporaryDirectory() + "kaizen-crash-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let port = try EmbeddedPostgres.freePort()
        let servers = try StorageCluster.makeServers(urls: urls, maxConnectionsPerServer: 4, acquireTimeout: testAcquireTimeout, logger: Self.logger)
        let pools = Task { await StorageCluster.runPools(servers) }
        defer { pools.cancel() }

        // PostgreSQL notices a dead client within 200 ms even inside a long statement (for sessions
        // opened from now on), so a killed node's transaction is rolled back at once.
        for server in servers {
            try await server.run { connection in
                try await connection.query(
                    PostgresQuery(unsafeSQL: "ALTER DATABASE \"\(server.url.database)\" SET client_connection_check_interval = '200ms'"),
                    logger: Self.logger)
            }
        }

        // A node of its own: the `kaizen` binary, 2-second job leases.
        let child = try await KaizenNode.start(
            port: port,
            environment: [
                "KAIZEN_DATA_DIR": dataDir, "KAIZEN_DATABASE_URLS": urls.map(\.urlWithCredentials).joined(separator: ","),
                "KAIZEN_SHARDS": "8", "KAIZEN_JOB_LEASE_SECONDS": "2", "KAIZEN_LOG_LEVEL": "info",
            ],
            logPath: dataDir + "-node.log")
        defer { if child.isRunning { child.kill() } }
        let admin = try await Self.firstAdmin(port: port, dataDir: dataDir)
        #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)

        // The first roll-up of run "slow" hangs inside its transaction (once): the node dies mid-way.
        let catalog = try #require(servers.first)
        let ws = try #require(try await CatalogStore(server: catalog, logger: Self.logger).workspace(slug: "default"))
        let serverIndex = try await catalog.run { connection in
            var index = 0
            for try await value in try await connection.query(
                "SELECT server_index FROM shards WHERE shard_id = \(ws.shardID)", logger: Self.logger
            ).decode(Int.self) { index = value }
            return index
        }
        let shardServer = servers[serverIndex]
        try await shardServer.run { connection in
            try await connection.query("CREATE SEQUENCE test_hangs", logger: Self.logger)
            try await connection.query(
                """
                CREATE FUNCTION test_hang() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.external_run_id = 'slow' AND NEW.rolled_up_at IS NOT NULL AND nextval('test_hangs') = 1 THEN
                        PERFORM pg_sleep(600);
                    END IF;
                    RETURN NEW;
                END $$
                """, logger: Self.logger)
            try await connection.query(
                "CREATE TRIGGER test_hang BEFORE UPDATE ON runs FOR EACH ROW EXECUTE FUNCTION test_hang()", logger: Self.logger)
        }
        for id in ["slow", "after"] {
            let reply = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: id))
            #expect(reply.status == 200, "\(reply.text)")
        }
        func job(_ runExternalID: String) async throws -> (state: String, attempts: Int, rolledUp: Date?) {
            try await shardServer.run { connection in
                let rows = try await connection.query(
                    """
                    SELECT j.state, j.attempts, r.rolled_up_at FROM jobs j JOIN runs r
                      ON r.workspace_id = j.workspace_id AND r.id = j.payload->>'runId'
                    WHERE r.external_run_id = \(runExternalID)
                    """, logger: Self.logger)
                for try await row in rows.decode((String, Int, Date?).self) { return row }
                return ("missing", 0, nil)
            }
        }
        // Claimed, begun, and hanging inside its roll-up (the trigger fired): what the child holds is settled.
        try await waitUntil("the child hangs in the slow roll-up", seconds: testConditionTimeout) {
            let hanging = try await shardServer.run { connection in
                try await connection.query("SELECT is_called FROM test_hangs", logger: Self.logger).collect().first?.decode(Bool.self) ?? false
            }
            return try await job("slow").state == "running" && hanging
        }

        // The child may have folded "after" into the same batch as "slow": then the crash ends an
        // attempt of both. Otherwise "after" only waited, which spends no attempt.
        let afterBegun = try await shardServer.run { connection in
            try await connection.query(
                """
                SELECT j.started_at IS NOT NULL FROM jobs j JOIN runs r ON r.workspace_id = j.workspace_id AND r.id = j.payload->>'runId'
                WHERE r.external_run_id = 'after'
                """, logger: Self.logger
            ).collect().first?.decode(Bool.self) ?? false
        }
        child.kill()
        let killedAt = ContinuousClock.now

        // Another node on the same databases picks the work up.
        let node = try await TestServer.start(config: {
            var config = KaizenConfiguration()
            config.port = 0
            config.databaseURLs = urls
            config.logicalShards = 8
            config.dataDirectory = dataDir
            config.jobLeaseSeconds = 2
            return config
        }())
        defer { Task { await node.stop() } }
        try await waitUntil("both runs rolled up", seconds: testConditionTimeout) {
            let slow = try await job("slow").state
            let after = try await job("after").state
            return slow == "done" && after == "done"
        }
        let recovered = ContinuousClock.now - killedAt
        let slow = try await job("slow")
        let after = try await job("after")
        #expect(slow.attempts == 2, "the crashed attempt and the one that finished")
        #expect(after.attempts == (afterBegun ? 2 : 1), "waiting for the earlier run spent no attempt; a crashed batch spent one")
        let (slowAt, afterAt) = (try #require(slow.rolledUp), try #require(after.rolledUp))
        #expect(slowAt <= afterAt, "rolled up out of finalize order")
        print("crash recovery: both roll-ups done \(recovered) after kill -9 (lease 2 s)")
        await node.stop()
    }

    /// Issue 17: a node killed with -9 after runs committed and before their webhook deliveries went out. The
    /// outbox committed with the runs, so the restarted node sends exactly the missed ones — each once, in order,
    /// signed so that README's receiver accepts them — and nothing that was already delivered.
    @Test func deliveriesMissedByAKilledNodeAreSentAfterItsRestart() async throws {
        let urls = try await TestPostgres.shared.freshDatabases()
        let dataDir = NSTemporaryDirectory() + "kaizen-crash-hooks-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let port = try EmbeddedPostgres.freePort()
        let environment = [
            "KAIZEN_DATA_DIR": dataDir, "KAIZEN_DATABASE_URLS": urls.map(\.urlWithCredentials).joined(separator: ","),
            "KAIZEN_SHARDS": "8", "KAIZEN_LOG_LEVEL": "info", "KAIZEN_WEBHOOK_ALLOW_HTTP": "true",
            "KAIZEN_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8", "KAIZEN_WEBHOOK_FIRST_RETRY_SECONDS": "0.2",
            "KAIZEN_WEBHOOK_TIMEOUT_SECONDS": "1",
        ]
        var node = try await KaizenNode.start(port: port, environment: environment, logPath: dataDir + "-node.log")
        defer { if node.isRunning { node.kill() } }
        let admin = try await Self.firstAdmin(port: port, dataDir: dataDir)
        #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
        let receiverPort = freeLoopbackPort()
        let created = try await admin.post(
            "/v1/projects/web/webhooks", json: ["url": "http://127.0.0.1:\(receiverPort)/hook", "events": ["run.finalized"]])
        let secret = try #require(created.object["secret"] as? String, "\(created.text)")
        let hookID = try #require((created.object["webhook"] as? [String: Any])?["id"] as? String)
        let program = try Receiver.readmeProgram

        // One run delivered while the receiver listens.
        var receiver = try await Receiver.start(program, port: receiverPort, environment: ["KAIZEN_WEBHOOK_SECRET": secret])
        defer { receiver.stop() }
        #expect(try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "first")).status == 200)
        try await waitUntil("the first delivery arrived") { receiver.lines.count == 1 }
        let first = receiver.lines
        // The receiver goes away; two more runs commit, their deliveries fail and wait; the node is killed.
        receiver.stop()
        for id in ["second", "third"] {
            #expect(try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: id)).status == 200)
        }
        try await waitUntil("both deliveries were tried and failed") {
            let items = try await admin.get("/v1/webhooks/\(hookID)/deliveries").object["items"] as? [[String: Any]] ?? []
            return items.filter { $0["state"] as? String == "pending" && ($0["attempts"] as? Int ?? 0) >= 1 }.count >= 1
        }
        node.kill()

        // The receiver is back, then the node: exactly the two missed deliveries arrive, in order.
        receiver = try await Receiver.start(program, port: receiverPort, environment: ["KAIZEN_WEBHOOK_SECRET": secret])
        node = try await KaizenNode.start(port: port, environment: environment, logPath: dataDir + "-node2.log")
        try await waitUntil("the missed deliveries arrived") { receiver.lines.count >= 2 }
        let items = try await admin.get("/v1/webhooks/\(hookID)/deliveries").object["items"] as? [[String: Any]] ?? []
        let ids = items.compactMap { $0["id"] as? String }
        #expect(items.count == 3)
        // Newest first in the list: the two missed, then the first (delivered before the kill, not sent again).
        let resent = receiver.lines.map { String($0.split(separator: " ")[1]) }
        #expect(resent == [ids[1], ids[0]], "\(receiver.lines) vs \(ids)")
        #expect(first.first?.hasSuffix(ids[2]) == true)
        _ = await node.stop()
    }

    /// Waits until a fresh node answers and has written its first admin token, and returns a client with it.
    static func firstAdmin(port: Int, dataDir: String) async throws -> APIClient {
        let base = "http://127.0.0.1:\(port)"
        let tokenPath = dataDir + "/first-token.txt"
        try await waitUntil("the child server is up", seconds: testConditionTimeout) {
            guard FileManager.default.fileExists(atPath: tokenPath) else { return false }
            return try await APIClient(baseURL: base, token: nil).get("/version").status == 200
        }
        let token = try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return APIClient(baseURL: base, token: token)
    }

    func runDocument(externalRunId: String) -> [String: Any] {
        [
            "schemaVersion": "kensho/v1", "project": ["slug": "web"], "externalRunId": externalRunId, "branch": "main",
            "totals": ["passed": 1, "failed": 0, "skipped": 0, "broken": 0, "flaky": 0],
            "cases": [["name": "a", "status": "passed", "durationMs": 1]],
        ]
    }
}
