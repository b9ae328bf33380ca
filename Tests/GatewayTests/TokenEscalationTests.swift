import Domains
import Foundation
import KaizenTestSupport
import Logging
import PostgresNIO
import Storage
import Testing

/// Issue 11 §1: a credential never carries a permission its issuer could not exercise.
@Suite struct TokenEscalationTests {
    /// A person who is admin of a workspace the attacker has no access to.
    func victimWorkspace(_ server: TestServer) async throws -> (workspace: Workspace, user: User) {
        let catalog = server.cluster.catalog
        let ws = try await catalog.createWorkspace(slug: "victim", name: "Victim Co")
        let user = try await catalog.upsertUser(email: "victim@example.com", name: "Victim")
        try await catalog.setMembership(workspaceID: ws.id, userID: user.id, role: .admin)
        return (ws, user)
    }

    @Test func aTokenMintedForAForeignEmailIsConfinedToTheMintersWorkspace() async throws {
        try await withServer { server, admin in
            _ = try await victimWorkspace(server)
            // The admin of `default` mints a user token for the victim's email…
            let forged = try await mint(admin, tokenClass: "user", role: "admin", user: "victim@example.com")
            // …which acts in `default` only: the victim's own workspace does not exist for it.
            let me = try await forged.get("/v1/me")
            let workspaces = (me.object["workspaces"] as? [[String: Any]] ?? []).compactMap { $0["slug"] as? String }
            #expect(workspaces == ["default"], "\(me.text)")
            #expect(try await forged.get("/v1/workspaces/victim").status == 404)
            #expect(try await forged.get("/v1/workspaces/victim/tokens").status == 404)
            #expect(try await forged.get("/v1/projects?workspace=victim").status == 404)
            let mintThere = try await forged.post(
                "/v1/workspaces/victim/tokens", json: ["name": "x", "class": "workspace", "role": "admin"])
            #expect(mintThere.status == 404)
            let listed = try await forged.get("/v1/workspaces").array.compactMap { $0["slug"] as? String }
            #expect(listed == ["default"])
        }
    }

    @Test func theOwnWorkspaceTrickGrantsOnlyTheNewWorkspace() async throws {
        try await withServer { server, admin in
            _ = try await victimWorkspace(server)
            // An ordinary member creates a workspace of their own and so becomes its admin…
            let mallory = try await mint(admin, tokenClass: "user", role: "member", user: "mallory@example.com")
            let created = try await mallory.post("/v1/workspaces", json: ["slug": "mallory", "name": "Mine"])
            #expect(created.status == 201, "\(created.text)")
            #expect(try await mallory.get("/v1/workspaces/mallory").status == 200)
            // …and mints from it a user token for the victim: it covers `mallory` and nothing else.
            let forged = try await mint(mallory, workspace: "mallory", tokenClass: "user", role: "admin", user: "victim@example.com")
            let slugs = try await forged.get("/v1/workspaces").array.compactMap { $0["slug"] as? String }
            #expect(slugs == ["mallory"])
            #expect(try await forged.get("/v1/workspaces/victim").status == 404)
            #expect(try await forged.get("/v1/workspaces/default").status == 404)
        }
    }

    @Test func noTokenGetsARoleAboveItsIssuers() async throws {
        try await withServer { server, admin in
            let member = try await mint(admin, tokenClass: "user", role: "member", user: "dev@example.com")
            // Only admins mint, and a member cannot mint anything.
            let attempt = try await member.post(
                "/v1/workspaces/default/tokens",
                json: ["name": "x", "class": "user", "role": "admin", "user": ["email": "dev@example.com"]])
            #expect(attempt.status == 403)
            #expect(
                try await member.post("/v1/workspaces/default/tokens", json: ["name": "x", "class": "workspace", "role": "viewer"])
                    .status == 403)

            // The role stored on a token caps what the membership would give.
            let catalog = server.cluster.catalog
            let ws = try #require(try await catalog.workspace(slug: "default"))
            let boss = try await catalog.upsertUser(email: "boss@example.com", name: nil)
            try await catalog.setMembership(workspaceID: ws.id, userID: boss.id, role: .admin)
            let (_, capped) = try await catalog.createToken(
                .init(
                    name: "viewer only", tokenClass: .user, workspaceID: ws.id, role: .viewer, userID: boss.id,
                    createdBy: nil, expiresAt: Date(timeIntervalSinceNow: 3600)))
            let identity = try #require(try await catalog.resolve(secretHash: TokenSecret.hash(capped)))
            #expect(identity.grants.map(\.role) == [.viewer])
            let viewer = admin.with(token: capped)
            #expect(try await viewer.post("/v1/projects", json: ["slug": "p", "name": "P"]).status == 403)
        }
    }

    @Test func aRemovedMemberCanNeitherActNorMintAgain() async throws {
        try await withServer(configure: { $0.authCacheSeconds = 0 }) { server, admin in
            let other = try await mint(admin, tokenClass: "user", role: "admin", user: "former@example.com")
            #expect(try await other.get("/v1/workspaces/default/tokens").status == 200)
            // The membership goes (the members API comes with accounts; the catalog is the truth).
            try await server.cluster.catalog.server.run { connection in
                try await connection.query(
                    "DELETE FROM memberships WHERE user_id = (SELECT id FROM users WHERE email = 'former@example.com')",
                    logger: Logging.Logger(label: "kaizen.tests"))
            }
            #expect(try await other.get("/v1/workspaces/default").status == 404)
            let reMint = try await other.post(
                "/v1/workspaces/default/tokens",
                json: ["name": "again", "class": "user", "role": "admin", "user": ["email": "former@example.com"]])
            #expect(reMint.status == 404)
            #expect(try await other.get("/v1/workspaces").array.isEmpty)
        }
    }

    @Test func whoMayCreateWorkspacesIsASetting() async throws {
        try await withServer { _, admin in
            let viewer = try await mint(admin, tokenClass: "user", role: "viewer", user: "reader@example.com")
            let denied = try await viewer.post("/v1/workspaces", json: ["slug": "mine", "name": "Mine"])
            #expect(denied.status == 403, "\(denied.text)")
        }
        try await withServer(configure: { $0.workspaceCreation = .operators }) { _, admin in
            let member = try await mint(admin, tokenClass: "user", role: "member", user: "dev@example.com")
            #expect(try await member.post("/v1/workspaces", json: ["slug": "mine", "name": "Mine"]).status == 403)
        }
    }
}
