import Foundation
import KaizenTestSupport
import Synchronization
import Gateway
import Domains
import Tenancy
import Testing

@Suite struct ProjectTests {
    @Test func createListAndGetProjects() async throws {
        try await withServer { _, admin in
            let created = try await admin.post(
                "/v1/projects", json: ["slug": "acme-web", "name": "Acme Web", "accessMode": "team"])
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(created.object["id"] as? String)
            #expect(id.hasPrefix("prj_"))
            #expect(created.object["defaultBranch"] as? String == "main")

            let list = try await admin.get("/v1/projects")
            #expect(list.status == 200)
            let project = try #require(list.array.first)
            #expect(list.array.count == 1)
            // The seed's shape.
            #expect(project["slug"] as? String == "acme-web")
            #expect(project["name"] as? String == "Acme Web")
            #expect(project["accessMode"] as? String == "team")
            let workspace = project["workspace"] as? [String: Any] ?? [:]
            #expect(workspace["slug"] as? String == "default")
            #expect((workspace["id"] as? String)?.hasPrefix("ws_") == true)
            let stats = project["stats"] as? [String: Any] ?? [:]
            #expect(stats["lastRunAt"] is NSNull)
            #expect(stats["passRate30d"] is NSNull)
            #expect(stats["flakyCount"] as? Int == 0)

            let one = try await admin.get("/v1/projects/acme-web")
            #expect(one.status == 200)
            #expect(one.object["id"] as? String == id)
            let extended = one.object["extendedStats"] as? [String: Any] ?? [:]
            #expect(extended["historyRange"] != nil)
            #expect(extended["topFailingSuites"] as? [Any] != nil)
            #expect(extended["defects"] != nil)

            let missing = try await admin.get("/v1/projects/nope")
            #expect(missing.status == 404)
            #expect(missing.errorCode == "not_found")
        }
    }

    @Test func duplicateSlugIs409() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let again = try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web again"])
            #expect(again.status == 409)
            #expect(again.errorCode == "conflict")
        }
    }

    @Test func invalidFieldsAre422WithPointers() async throws {
        try await withServer { _, admin in
            let reply = try await admin.post(
                "/v1/projects", json: ["slug": "Not A Slug", "name": "", "defaultBranch": "has space"])
            #expect(reply.status == 422)
            #expect(reply.errorCode == "validation_failed")
            #expect(Set(reply.errorPointers) == ["/slug", "/name", "/defaultBranch"])

            let missing = try await admin.post("/v1/projects", json: ["name": "No slug"])
            #expect(missing.status == 422)
            #expect(missing.errorPointers == ["/slug"])

            let wrongType = try await admin.post("/v1/projects", json: ["slug": 42, "name": "x"])
            #expect(wrongType.status == 422)
            #expect(wrongType.errorPointers == ["/slug"])

            let badEnum = try await admin.post("/v1/projects", json: ["slug": "ok", "name": "x", "accessMode": "open"])
            #expect(badEnum.status == 422)
            #expect(badEnum.errorPointers == ["/accessMode"])

            let extra = try await admin.post("/v1/projects", json: ["slug": "ok", "name": "x", "colour": "red"])
            #expect(extra.status == 422)

            // Nothing half-written.
            #expect(try await admin.get("/v1/projects").array.isEmpty)
        }
    }

    @Test func malformedJSONIs400() async throws {
        try await withServer { _, admin in
            let reply = try await admin.post("/v1/projects", raw: Data(#"{"slug": "web", "name": "#.utf8))
            #expect(reply.status == 400)
            #expect(reply.errorCode == "malformed_json")
        }
    }

    @Test func oversizedBodiesAre413() async throws {
        try await withServer(configure: { $0.maxBodyBytes = 4096 }) { _, admin in
            let big = Data(#"{"slug":"web","name":"\#(String(repeating: "x", count: 10_000))"}"#.utf8)
            let reply = try await admin.post("/v1/projects", raw: big)
            #expect(reply.status == 413)
            #expect(reply.errorCode == "payload_too_large")
            #expect(reply.errorDetails?["limitBytes"] as? Int == 4096)
        }
    }

    @Test func viewersCannotChangeAnything() async throws {
        try await withServer { _, admin in
            let viewer = try await mint(admin, role: "viewer")
            let create = try await viewer.post("/v1/projects", json: ["slug": "web", "name": "Web"])
            #expect(create.status == 403)
            #expect(create.errorCode == "forbidden")
            let tokens = try await viewer.post("/v1/workspaces/default/tokens", json: ["name": "x", "class": "workspace", "role": "admin"])
            #expect(tokens.status == 403)
            // Reading is fine.
            #expect(try await viewer.get("/v1/projects").status == 200)
            // Members write but do not administer.
            let member = try await mint(admin, role: "member")
            #expect(try await member.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            #expect(try await member.get("/v1/workspaces/default/tokens").status == 403)
        }
    }

    @Test func privateProjectsAreHiddenFromMembersUserTokens() async throws {
        try await withServer { _, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "secret", "name": "S", "accessMode": "private"]).status == 201)
            let member = try await mint(admin, tokenClass: "user", role: "member", user: "dev@example.com")
            #expect(try await member.get("/v1/projects").array.isEmpty)
            #expect(try await member.get("/v1/projects/secret").status == 404)
            #expect(try await admin.get("/v1/projects/secret").status == 200)
        }
    }
}

@Suite struct TokenTests {
    @Test func secretIsShownOnceAndNeverListed() async throws {
        try await withServer { _, admin in
            let created = try await admin.post(
                "/v1/workspaces/default/tokens", json: ["name": "ci", "class": "workspace", "role": "member"])
            #expect(created.status == 201)
            let secret = try #require(created.object["secret"] as? String)
            #expect(secret.hasPrefix("krt_"))
            #expect((created.object["hint"] as? String).map { secret.hasPrefix($0) } == true)

            let list = try await admin.get("/v1/workspaces/default/tokens")
            #expect(list.status == 200)
            #expect(list.array.count == 2)  // the first admin token and this one
            #expect(!list.text.contains(secret))
            #expect(list.array.allSatisfy { $0["secret"] == nil })
        }
    }

    @Test func revokedTokensStopWorkingAtOnce() async throws {
        try await withServer { _, admin in
            let created = try await admin.post(
                "/v1/workspaces/default/tokens", json: ["name": "ci", "class": "workspace", "role": "member"])
            let id = try #require(created.object["id"] as? String)
            let ci = admin.with(token: try #require(created.object["secret"] as? String))
            #expect(try await ci.get("/v1/projects").status == 200)  // now cached

            let revoked = try await admin.delete("/v1/workspaces/default/tokens/\(id)")
            #expect(revoked.status == 200)
            #expect(revoked.object["revokedAt"] is String)
            let after = try await ci.get("/v1/projects")
            #expect(after.status == 401)

            #expect(try await admin.delete("/v1/workspaces/default/tokens/tok_nope").status == 404)
        }
    }

    @Test func userTokensExpireAndSpanTheirMemberships() async throws {
        try await withServer { _, admin in
            let user = try await mint(admin, tokenClass: "user", role: "member", user: "Dev@Example.com", ttl: 3600)
            let me = try await user.get("/v1/me")
            #expect((me.object["token"] as? [String: Any])?["class"] as? String == "user")
            #expect((me.object["user"] as? [String: Any])?["email"] as? String == "dev@example.com")
            #expect((me.object["token"] as? [String: Any])?["expiresAt"] is String)

            // A user token creates a workspace and becomes its admin.
            let created = try await user.post("/v1/workspaces", json: ["slug": "team-b", "name": "Team B"])
            #expect(created.status == 201, "\(created.text)")
            #expect(created.object["role"] as? String == "admin")
            let workspaces = try await user.get("/v1/workspaces")
            #expect(workspaces.array.compactMap { $0["slug"] as? String } == ["default", "team-b"])
            // With two workspaces, creating a project needs the workspace named.
            let ambiguous = try await user.post("/v1/projects", json: ["slug": "web", "name": "Web"])
            #expect(ambiguous.status == 422)
            #expect(ambiguous.errorPointers == ["/workspace"])
            #expect(try await user.post("/v1/projects", json: ["workspace": "team-b", "slug": "web", "name": "Web"]).status == 201)

            // Workspace tokens cannot create workspaces.
            let denied = try await admin.post("/v1/workspaces", json: ["slug": "other", "name": "Other"])
            #expect(denied.status == 403)

            // Default TTL is 12 h; out-of-range TTLs are refused with a pointer.
            let badTTL = try await admin.post(
                "/v1/workspaces/default/tokens",
                json: ["name": "x", "class": "user", "user": ["email": "a@b.co"], "ttlSeconds": 5])
            #expect(badTTL.status == 422)
            #expect(badTTL.errorPointers == ["/ttlSeconds"])
            let noRole = try await admin.post("/v1/workspaces/default/tokens", json: ["name": "x", "class": "workspace"])
            #expect(noRole.errorPointers == ["/role"])
        }
    }

    /// Expiry without waiting for real time: an expired token is refused by the catalog, and an
    /// identity cached while valid is refused once the (injected) wall clock passes its expiry.
    @Test func expiredUserTokenIs401() async throws {
        try await withServer { server, admin in
            let catalog = server.cluster.catalog
            let ws = try #require(try await catalog.workspace(slug: "default"))
            let user = try await catalog.upsertUser(email: "short@example.com", name: nil)
            try await catalog.setMembership(workspaceID: ws.id, userID: user.id, role: .member)
            func token(expiringIn seconds: TimeInterval) async throws -> String {
                try await catalog.createToken(
                    .init(
                        name: "brief", tokenClass: .user, workspaceID: ws.id, role: .member, userID: user.id, createdBy: nil,
                        expiresAt: Date(timeIntervalSinceNow: seconds))
                ).secret
            }
            let expired = try await token(expiringIn: -60)
            #expect(try await admin.with(token: expired).get("/v1/projects").status == 401)
            let live = try await token(expiringIn: 3600)
            #expect(try await admin.with(token: live).get("/v1/projects").status == 200)

            let now = ManualClock(Clock.nowMilliseconds())
            let authenticator = Authenticator(
                directory: Directory(catalog: catalog), cacheSeconds: 86_400, wallClock: { now.now })
            let identity = try await authenticator.authenticate(secret: Substring(live))
            #expect(identity.expiresAtMilliseconds != nil)
            now.advance(by: 3_601_000)  // an hour and a second later, still inside the cache's TTL
            await #expect(throws: DomainError.self) { try await authenticator.authenticate(secret: Substring(live)) }
        }
    }
}

/// API keys as users expect (issue 14): optional expiry for workspace tokens, when each was last used,
/// and delete beside revoke.
@Suite struct TokenLifecycleTests {
    @Test func workspaceTokensMayExpireAndOutOfRangeIs422() async throws {
        try await withServer { server, admin in
            let created = try await admin.post(
                "/v1/workspaces/default/tokens",
                json: ["name": "nightly", "class": "workspace", "role": "member", "ttlSeconds": 86_400])
            #expect(created.status == 201, "\(created.text)")
            let expires = try #require(created.object["expiresAt"] as? String)
            let expiry = try #require(try? Date(expires, strategy: .iso8601))
            #expect(abs(expiry.timeIntervalSinceNow - 86_400) < 600)
            let secret = try #require(created.object["secret"] as? String)
            #expect(try await admin.with(token: secret).get("/v1/projects").status == 200)
            // Without ttlSeconds a workspace token still lives until revoked.
            let forever = try await admin.post("/v1/workspaces/default/tokens", json: ["name": "ci", "class": "workspace", "role": "member"])
            #expect(forever.object["expiresAt"] is NSNull || forever.object["expiresAt"] == nil)
            for ttl in [59, 63_072_001] {
                let bad = try await admin.post(
                    "/v1/workspaces/default/tokens", json: ["name": "x", "class": "workspace", "role": "member", "ttlSeconds": ttl])
                #expect([400, 422].contains(bad.status), "\(ttl): \(bad.text)")
                #expect(bad.errorPointers == ["/ttlSeconds"], "\(ttl): \(bad.text)")
            }
            // A workspace token past its expiry is refused (its expiry moved into the past in the catalog).
            let id = try #require(created.object["id"] as? String)
            try await server.cluster.servers[0].run { connection in
                try await connection.query("UPDATE tokens SET expires_at = now() - interval '1 minute' WHERE id = \(id)", logger: .init(label: "t"))
            }
            let fresh = APIClient(baseURL: server.baseURL, token: secret)
            try await waitUntil("the expired token is refused") { try await fresh.get("/v1/projects").status == 401 }
        }
    }

    @Test func lastUsedAtIsRecordedWithoutAWritePerRequest() async throws {
        try await withServer(configure: { $0.tokenUseFlushSeconds = 1 }) { _, admin in
            let used = try await admin.post("/v1/workspaces/default/tokens", json: ["name": "used", "class": "workspace", "role": "member"])
            let idle = try await admin.post("/v1/workspaces/default/tokens", json: ["name": "idle", "class": "workspace", "role": "member"])
            #expect(used.object["lastUsedAt"] is NSNull || used.object["lastUsedAt"] == nil)
            let usedID = try #require(used.object["id"] as? String), idleID = try #require(idle.object["id"] as? String)
            let client = admin.with(token: try #require(used.object["secret"] as? String))
            for _ in 0..<5 { #expect(try await client.get("/v1/projects").status == 200) }
            try await waitUntil("the use is flushed") {
                let list = try await admin.get("/v1/workspaces/default/tokens").array
                return list.first { $0["id"] as? String == usedID }?["lastUsedAt"] is String
            }
            let list = try await admin.get("/v1/workspaces/default/tokens").array
            let stamp = try #require(list.first { $0["id"] as? String == usedID }?["lastUsedAt"] as? String)
            #expect(abs((try #require(try? Date(stamp, strategy: .iso8601))).timeIntervalSinceNow) < 600)
            let never = try #require(list.first { $0["id"] as? String == idleID })
            #expect(never["lastUsedAt"] == nil || never["lastUsedAt"] is NSNull, "a token never used has no lastUsedAt")
        }
    }

    @Test func deleteRemovesATokenForGoodAndRevokeKeepsItListed() async throws {
        try await withServer { _, admin in
            func mintMember(_ name: String) async throws -> (id: String, client: APIClient) {
                let created = try await admin.post("/v1/workspaces/default/tokens", json: ["name": name, "class": "workspace", "role": "member"])
                return (try #require(created.object["id"] as? String), admin.with(token: try #require(created.object["secret"] as? String)))
            }
            let gone = try await mintMember("gone"), kept = try await mintMember("kept")
            #expect(try await gone.client.get("/v1/projects").status == 200)
            let deleted = try await admin.delete("/v1/workspaces/default/tokens/\(gone.id)?action=delete")
            #expect(deleted.status == 204, "\(deleted.text)")
            #expect(try await gone.client.get("/v1/projects").status == 401)
            #expect(try await admin.delete("/v1/workspaces/default/tokens/\(kept.id)?action=revoke").status == 200)
            let ids = try await admin.get("/v1/workspaces/default/tokens").array.compactMap { $0["id"] as? String }
            #expect(!ids.contains(gone.id) && ids.contains(kept.id))
            // Deleting twice, an unknown action, another workspace's token: the usual answers.
            #expect(try await admin.delete("/v1/workspaces/default/tokens/\(gone.id)?action=delete").status == 404)
            let bogus = try await admin.delete("/v1/workspaces/default/tokens/\(kept.id)?action=shred")
            #expect(bogus.status == 400, "\(bogus.text)")
            // A member (not admin) cannot delete; another workspace's admin gets 404 for this id.
            #expect(try await kept.client.delete("/v1/workspaces/default/tokens/\(kept.id)?action=delete").status == 401)
            let member = try await mintMember("member")
            #expect(try await member.client.delete("/v1/workspaces/default/tokens/\(kept.id)?action=delete").status == 403)
            let person = try await mint(admin, tokenClass: "user", role: "admin", user: "owner@example.com", ttl: 3600)
            #expect(try await person.post("/v1/workspaces", json: ["slug": "elsewhere", "name": "Elsewhere"]).status == 201)
            #expect(try await person.delete("/v1/workspaces/elsewhere/tokens/\(kept.id)?action=delete").status == 404)
        }
    }
}
