import Foundation
import KaizenTestSupport
import PostgresNIO
import Testing

@Suite struct TenancyIsolationTests {
    /// Workspaces land on both physical servers, and each workspace's rows are on its own server only.
    @Test func workspacesLandOnBothServersAndRequestsReachTheRightOne() async throws {
        try await withServer { server, admin in
            var clients: [String: APIClient] = [:]
            for index in 0..<4 {
                let slug = "team-\(index)"
                let ws = try await server.cluster.catalog.createWorkspace(slug: slug, name: slug)
                let (_, secret) = try await server.cluster.catalog.createToken(
                    .init(name: "ci", tokenClass: .workspace, workspaceID: ws.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
                clients[slug] = admin.with(token: secret)
                let created = try await clients[slug]!.post("/v1/projects", json: ["slug": "web", "name": "Web \(index)"])
                #expect(created.status == 201)
            }
            var serversUsed: Set<Int> = []
            for ws in try await server.cluster.catalog.allWorkspaces() where ws.slug.hasPrefix("team-") {
                let home = try #require(server.cluster.shardMap.serverIndex(forShard: ws.shardID))
                serversUsed.insert(home)
                for physical in server.cluster.servers {
                    let rows = try await physical.run { connection in
                        try await connection.query(
                            "SELECT name FROM projects WHERE workspace_id = \(ws.id)", logger: .init(label: "t")
                        ).collect()
                    }
                    #expect(rows.count == (physical.index == home ? 1 : 0), "\(ws.slug) rows on server \(physical.index)")
                }
            }
            #expect(serversUsed == [0, 1])
        }
    }

    /// A token of workspace A never sees workspace B: every cross-tenant access is a 404.
    @Test func crossTenantAccessIs404() async throws {
        try await withServer { server, admin in
            let other = try await server.cluster.catalog.createWorkspace(slug: "other", name: "Other")
            let (_, secret) = try await server.cluster.catalog.createToken(
                .init(name: "x", tokenClass: .workspace, workspaceID: other.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
            let otherClient = admin.with(token: secret)
            #expect(try await otherClient.post("/v1/projects", json: ["slug": "private-app", "name": "P"]).status == 201)

            #expect(try await admin.get("/v1/projects/private-app").status == 404)
            #expect(try await admin.get("/v1/projects?workspace=other").status == 404)
            #expect(try await admin.get("/v1/workspaces/other").status == 404)
            #expect(try await admin.get("/v1/workspaces/other/tokens").status == 404)
            #expect(try await admin.post("/v1/projects", json: ["workspace": "other", "slug": "x", "name": "x"]).status == 404)
            let tokens = try await otherClient.get("/v1/workspaces/other/tokens")
            let tokenID = try #require(tokens.array.first?["id"] as? String)
            #expect(try await admin.delete("/v1/workspaces/default/tokens/\(tokenID)").status == 404)
            #expect(try await otherClient.get("/v1/projects/private-app").status == 200)
            #expect(!(try await admin.get("/v1/projects").text.contains("private-app")))
        }
    }
}
