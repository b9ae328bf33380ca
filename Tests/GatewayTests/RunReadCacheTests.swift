import Foundation
import KaizenTestSupport
import Testing

/// `GET /v1/runs/:id` is answered from the node's cache of encoded runs once read; the cache never
/// widens who may read: other workspaces and members kept out of a private project still get 404.
@Suite struct RunReadCacheTests {
    @Test func cachedRunsAnswerOnlyThoseWhoMayReadThem() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "secret", "name": "S", "accessMode": "private"]).status == 201)
            let first = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(project: "secret", externalRunId: "c1", cases: [testCase("a", "failed")]))
            let second = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(project: "secret", externalRunId: "c2", cases: [testCase("a", "passed")]))
            let runId = try #require(second.object["internalRunId"] as? String)
            let firstId = try #require(first.object["internalRunId"] as? String)

            let fresh = try await admin.get("/v1/runs/\(runId)")  // fills the cache
            #expect(fresh.status == 200)
            let cached = try await admin.get("/v1/runs/\(runId)")
            #expect(cached.status == 200)
            #expect(cached.body == fresh.body)
            #expect(cached.headers.first(name: "content-type")?.hasPrefix("application/json") == true)
            #expect(cached.headers.first(name: "x-ratelimit-limit") != nil)  // still behind auth and limits
            #expect(((cached.object["regression"] as? [String: Any])?["baseline"] as? [String: Any])?["id"] as? String == firstId)

            // A member's user token does not see the private project, cached or not.
            let member = try await mint(admin, tokenClass: "user", role: "member", user: "dev@example.com")
            #expect(try await member.get("/v1/runs/\(runId)").status == 404)
            // Another workspace's token: 404.
            let other = try await server.cluster.catalog.createWorkspace(slug: "other", name: "Other")
            let (_, secret) = try await server.cluster.catalog.createToken(
                .init(name: "x", tokenClass: .workspace, workspaceID: other.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
            #expect(try await admin.with(token: secret).get("/v1/runs/\(runId)").status == 404)
            // No token: 401 before any cache.
            #expect(try await admin.with(token: nil).get("/v1/runs/\(runId)").status == 401)
            // Sub-resources and queries are not this cache's business.
            #expect(try await admin.get("/v1/runs/\(runId)/cases").status == 200)
            #expect(try await admin.get("/v1/runs/\(runId)?x=1").status == 200)
        }
    }
}
