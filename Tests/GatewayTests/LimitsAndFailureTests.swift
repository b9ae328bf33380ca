import Foundation
import KaizenTestSupport
import Logging
import Storage
import Testing

@Suite struct RateLimitTests {
    @Test func overTheLimitIs429WithRetryAfterOnlyForThatClass() async throws {
        try await withServer(configure: {
            $0.userRateLimit = .init(perMinute: 6, burstSeconds: 50)  // one per 10 s, bursts of 5
            $0.workspaceRateLimit = .init(perMinute: 6000, burstSeconds: 10)
            // Time stands still for the limiter: nothing refills, however slow the machine.
            $0.rateLimitClock = { 1_000_000_000 }
        }) { _, admin in
            let user = try await mint(admin, tokenClass: "user", role: "member", user: "busy@example.com")
            var statuses: [Int] = []
            var limited: APIClient.Reply?
            for _ in 0..<8 {
                let reply = try await user.get("/v1/projects")
                statuses.append(reply.status)
                if reply.status == 429 { limited = reply }
            }
            #expect(statuses.prefix(5).allSatisfy { $0 == 200 })
            #expect(statuses.suffix(2).allSatisfy { $0 == 429 })
            let reply = try #require(limited)
            #expect(reply.errorCode == "rate_limited")
            #expect(Int(reply.headers.first(name: "Retry-After") ?? "") ?? 0 >= 1)
            // The workspace token is in its own bucket and class.
            for _ in 0..<20 { #expect(try await admin.get("/v1/projects").status == 200) }
            let ok = try await admin.get("/v1/projects")
            #expect(ok.headers.first(name: "X-RateLimit-Limit") == "6000")
        }
    }
}

@Suite struct ShardFailureTests {
    /// With one shard server down, `/healthz` is 503 naming it, its workspaces get 503,
    /// and workspaces on the other server are unaffected.
    @Test func aDownShardServerIs503ForItsWorkspacesOnly() async throws {
        var logger = Logger(label: "kaizen.tests")
        logger.logLevel = .warning
        let dir = "/tmp/kaizen-tests-\(getpid())/down-\(UUID().uuidString.prefix(8))"
        let spare = EmbeddedPostgres(directory: dir, database: "kaizen", logger: logger)
        let spareURL = try await spare.start().url
        defer {
            spare.stopBlocking()
            try? FileManager.default.removeItem(atPath: dir)
        }
        let primary = try await TestPostgres.shared.freshDatabases(count: 1)
        let server = try await TestServer.start(servers: 1) { config in
            config.databaseURLs = primary + [spareURL]
            config.logicalShards = 2
            config.dbAcquireTimeoutSeconds = 5  // the down server must be a prompt 503
        }
        do {
            try await checkDownShard(server, spare: spare)
        } catch {
            await server.stop()
            throw error
        }
        // Job workers and requests waiting on the dead server must not hold the shutdown up.
        let clock = ContinuousClock()
        let started = clock.now
        #expect(await server.stop(), "the server did not shut down with a database server gone")
        #expect(clock.now - started < .seconds(90))  // grace 8 s + 4 s, then the watchdog; slack for a loaded machine, far below a hang
    }

    func checkDownShard(_ server: TestServer, spare: EmbeddedPostgres) async throws {
        let admin = APIClient(baseURL: server.baseURL, token: server.adminToken)
        // Find a workspace on each server.
        var clients: [Int: APIClient] = [:]
        var index = 0
        while clients.count < 2 && index < 6 {
            let ws = try await server.cluster.catalog.createWorkspace(slug: "w\(index)", name: "W")
            let (_, secret) = try await server.cluster.catalog.createToken(
                .init(name: "t", tokenClass: .workspace, workspaceID: ws.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
            let home = server.cluster.shardMap.serverIndex(forShard: ws.shardID) ?? -1
            if clients[home] == nil { clients[home] = admin.with(token: secret) }
            index += 1
        }
        let onPrimary = try #require(clients[0])
        let onSpare = try #require(clients[1])
        #expect(try await onSpare.get("/v1/projects").status == 200)

        await spare.stop()

        // The down server is named; the other answers — asked until both hold (a loaded machine can
        // make one health probe of the live server time out).
        var health = try await admin.with(token: nil).get("/healthz")
        let deadline = ContinuousClock.now + .seconds(testConditionTimeout)
        func settled(_ reply: APIClient.Reply) -> Bool {
            let servers = reply.errorDetails?["servers"] as? [[String: Any]] ?? []
            return reply.status == 503 && servers.first { $0["index"] as? Int == 0 }?["status"] as? String == "ok"
                && servers.first { $0["index"] as? Int == 1 }?["status"] as? String == "unavailable"
        }
        while !settled(health), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            health = try await admin.with(token: nil).get("/healthz")
        }
        #expect(health.status == 503)
        #expect(health.errorCode == "shard_unavailable")
        #expect(health.errorMessage?.contains("server 1") == true)
        let servers = health.errorDetails?["servers"] as? [[String: Any]] ?? []
        #expect(servers.first { $0["index"] as? Int == 1 }?["status"] as? String == "unavailable")
        #expect(servers.first { $0["index"] as? Int == 0 }?["status"] as? String == "ok")

        let down = try await onSpare.post("/v1/projects", json: ["slug": "web", "name": "Web"])
        #expect(down.status == 503)
        #expect(down.errorCode == "shard_unavailable")
        #expect(down.headers.first(name: "Retry-After") != nil)
        #expect(try await onPrimary.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
    }
}

@Suite struct BodyLimitTests {
    /// A chunked body announces no length: the limit still holds while it streams.
    /// A finalize's body is collected by the kensho decoder itself (so that it can let the bytes go): the same limit.
    @Test(arguments: ["/v1/projects", "/v1/ingest/kensho/finalize"])
    func chunkedBodiesOverTheLimitAre413(_ path: String) async throws {
        try await withServer(configure: { $0.maxBodyBytes = 4096 }) { server, _ in
            var request = HTTPClientRequest(url: server.baseURL + path)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(server.adminToken)")
            request.headers.add(name: "Content-Type", value: "application/json")
            let chunk = ByteBuffer(string: String(repeating: " ", count: 1024))
            request.body = .stream(
                AsyncStream { continuation in
                    for _ in 0..<16 { continuation.yield(chunk) }
                    continuation.finish()
                }, length: .unknown)
            let response = try await testHTTPClient.execute(request, timeout: testRequestTimeout)
            #expect(response.status.code == 413)
            let body = try await response.body.collect(upTo: 1 << 20)
            #expect(String(buffer: body).contains("payload_too_large"))
        }
    }
}

import AsyncHTTPClient
import NIOCore
