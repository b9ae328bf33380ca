import Domains
import Foundation
import KaizenTestSupport
import Logging
import PostgresNIO
import Tenancy
import Testing

/// Accounts, sign-in, cookie sessions, members, invitations and the audit log, over real HTTP.
@Suite struct PeopleTests {
    struct Session {
        let secret: String
        let csrf: String
        let userID: String
        var cookie: String { "kaizen_session=\(secret)" }
    }

    /// The first start's owner set-up link, from the file it was written to.
    static func ownerLink(_ server: TestServer) throws -> String {
        let text = try String(contentsOfFile: server.config.ownerLinkPath, encoding: .utf8)
        let attributes = try FileManager.default.attributesOfItem(atPath: server.config.ownerLinkPath)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "the owner link file must be private")
        let firstLine = text.split(separator: "\n")[0]
        return String(firstLine[firstLine.range(of: "#")!.upperBound...])
    }

    static func session(_ reply: APIClient.Reply) throws -> Session {
        let object = reply.object
        let token = try #require(object["token"] as? [String: Any])
        let user = try #require(object["user"] as? [String: Any])
        return Session(
            secret: try #require(token["secret"] as? String), csrf: try #require(object["csrfToken"] as? String),
            userID: try #require(user["id"] as? String))
    }

    static func becomeOwner(_ server: TestServer, email: String = "owner@example.com", password: String = "correct horse battery")
        async throws -> Session
    {
        let anonymous = APIClient(baseURL: server.baseURL, token: nil)
        let reply = try await anonymous.post(
            "/v1/auth/invitations/accept", json: ["invitation": try ownerLink(server), "email": email, "password": password, "name": "Owner"])
        #expect(reply.status == 200, "\(reply.text)")
        return try session(reply)
    }

    static func login(_ server: TestServer, _ email: String, _ password: String) async throws -> APIClient.Reply {
        try await APIClient(baseURL: server.baseURL, token: nil).post("/v1/auth/login", json: ["email": email, "password": password])
    }

    @Test func signInAndOutWithTokenAndCookie() async throws {
        try await withServer { server, admin in
            let owner = try await Self.becomeOwner(server)
            // The set-up link works once.
            let again = try await APIClient(baseURL: server.baseURL, token: nil).post(
                "/v1/auth/invitations/accept",
                json: ["invitation": try Self.ownerLink(server), "email": "else@example.com", "password": "another good one"])
            #expect(again.status == 422 && again.errorPointers == ["/invitation"], "\(again.text)")

            let login = try await Self.login(server, "OWNER@example.com", "correct horse battery")
            #expect(login.status == 200, "\(login.text)")
            let cookie = try #require(login.headers.first(name: "set-cookie"))
            #expect(cookie.contains("kaizen_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"))
            #expect(!cookie.contains("Secure"), "plain HTTP: no Secure flag")
            let session = try Self.session(login)

            // The same session works as a bearer token and as the cookie; /v1/me says who and where.
            let me = try await admin.with(token: session.secret).get("/v1/me")
            #expect(me.status == 200)
            #expect((me.object["user"] as? [String: Any])?["email"] as? String == "owner@example.com")
            #expect((me.object["workspaces"] as? [[String: Any]])?.first?["role"] as? String == "owner")
            #expect(me.object["csrfToken"] as? String == session.csrf)
            let viaCookie = try await APIClient(baseURL: server.baseURL, token: nil).send(.GET, "/v1/me", headers: [("Cookie", session.cookie)])
            #expect(viaCookie.status == 200)

            // Logout ends it at once, for the cookie and the bearer alike; the other session lives on.
            let out = try await APIClient(baseURL: server.baseURL, token: nil).send(
                .POST, "/v1/auth/logout", headers: [("Cookie", session.cookie), ("X-CSRF-Token", session.csrf)])
            #expect(out.status == 204, "\(out.text)")
            #expect(out.headers.first(name: "set-cookie")?.contains("Max-Age=0") == true)
            #expect(try await APIClient(baseURL: server.baseURL, token: nil).send(.GET, "/v1/me", headers: [("Cookie", session.cookie)]).status == 401)
            #expect(try await admin.with(token: session.secret).get("/v1/me").status == 401)
            #expect(try await admin.with(token: owner.secret).get("/v1/me").status == 200)

            // Wrong password and unknown email answer alike.
            let wrong = try await Self.login(server, "owner@example.com", "not the password")
            let unknown = try await Self.login(server, "nobody@example.com", "not the password")
            #expect(wrong.status == 401 && unknown.status == 401)
            #expect(wrong.errorMessage == unknown.errorMessage)

            // A password change ends every session; the new password signs in.
            let change = try await admin.with(token: owner.secret).post(
                "/v1/auth/password", json: ["currentPassword": "correct horse battery", "newPassword": "owner@example.com"])
            #expect(change.status == 422 && change.errorPointers == ["/newPassword"], "the email is refused as a password")
            let changed = try await admin.with(token: owner.secret).post(
                "/v1/auth/password", json: ["currentPassword": "correct horse battery", "newPassword": "a much better passphrase"])
            #expect(changed.status == 204, "\(changed.text)")
            #expect(try await admin.with(token: owner.secret).get("/v1/me").status == 401)
            #expect(try await Self.login(server, "owner@example.com", "a much better passphrase").status == 200)
            // Secrets are stored hashed: the catalog has no password in clear.
            let stored = try await server.cluster.catalog.credentials(email: "owner@example.com")
            #expect(stored?.passwordHash?.hasPrefix("$2b$04$") == true)
        }
    }

    @Test func cookieChangesNeedTheCSRFProofBearerCallsDoNot() async throws {
        try await withServer { server, admin in
            let owner = try await Self.becomeOwner(server)
            let browser = APIClient(baseURL: server.baseURL, token: nil)
            let body = try JSONSerialization.data(withJSONObject: ["slug": "web", "name": "Web"])
            let bare = try await browser.send(.POST, "/v1/projects", body: body, headers: [("Cookie", owner.cookie)])
            #expect(bare.status == 403, "\(bare.text)")
            let forged = try await browser.send(
                .POST, "/v1/projects", body: body, headers: [("Cookie", owner.cookie), ("X-CSRF-Token", String(repeating: "0", count: 64))])
            #expect(forged.status == 403)
            let otherSite = try await browser.send(
                .POST, "/v1/projects", body: body, headers: [("Cookie", owner.cookie), ("Origin", "https://evil.example")])
            #expect(otherSite.status == 403)
            #expect(try await admin.get("/v1/projects").array.isEmpty, "nothing was created by the refused requests")
            let proven = try await browser.send(
                .POST, "/v1/projects", body: body, headers: [("Cookie", owner.cookie), ("X-CSRF-Token", owner.csrf)])
            #expect(proven.status == 201, "\(proven.text)")
            let sameOrigin = try await browser.send(
                .POST, "/v1/projects", body: try JSONSerialization.data(withJSONObject: ["slug": "api", "name": "API"]),
                headers: [("Cookie", owner.cookie), ("Origin", server.baseURL)])
            #expect(sameOrigin.status == 201, "\(sameOrigin.text)")
            // Reads need no proof; bearer calls need none either.
            #expect(try await browser.send(.GET, "/v1/projects", headers: [("Cookie", owner.cookie)]).status == 200)
            #expect(try await admin.with(token: owner.secret).post("/v1/projects", json: ["slug": "cli", "name": "CLI"]).status == 201)
        }
    }

    @Test func failedSignInsAreThrottledPerAccountAndPerAddress() async throws {
        let clock = ManualClock(1_000_000_000)
        try await withServer(configure: {
            $0.rateLimitClock = { clock.now }
            $0.signInBurst = 3
            $0.signInAddressBurst = 5
        }) { server, _ in
            _ = try await Self.becomeOwner(server)
            for _ in 0..<3 { #expect(try await Self.login(server, "owner@example.com", "wrong password").status == 401) }
            let limited = try await Self.login(server, "owner@example.com", "correct horse battery")
            #expect(limited.status == 429, "the account is throttled, even for the right password")
            #expect(Int(limited.headers.first(name: "retry-after") ?? "") ?? 0 >= 1)
            // Other accounts from the same address still have attempts, until the address runs out too.
            for _ in 0..<2 { #expect(try await Self.login(server, "someone@example.com", "wrong password").status == 401) }
            #expect(try await Self.login(server, "third@example.com", "wrong password").status == 429, "the address is throttled")
            // Time refills the buckets (2 a minute by default).
            clock.advance(by: 120_000_000_000)
            #expect(try await Self.login(server, "owner@example.com", "correct horse battery").status == 200)
        }
    }

    @Test func invitationsMembersRolesAndTheLastOwner() async throws {
        try await withServer { server, admin in
            let owner = try await Self.becomeOwner(server)
            let asOwner = admin.with(token: owner.secret)
            let anonymous = APIClient(baseURL: server.baseURL, token: nil)

            // Weak or out-of-range input is refused with pointers.
            let bad = try await asOwner.post("/v1/workspaces/default/invitations", json: ["email": "dev@example.com", "role": "member", "expiresInSeconds": 5])
            #expect(bad.status == 400 || bad.status == 422)
            let invite = try await asOwner.post("/v1/workspaces/default/invitations", json: ["email": "Dev@Example.com", "role": "member"])
            #expect(invite.status == 201, "\(invite.text)")
            let secret = try #require(invite.object["secret"] as? String)
            #expect((invite.object["link"] as? String)?.hasSuffix("#" + secret) == true)
            #expect(try await asOwner.get("/v1/workspaces/default/invitations").array.first?["state"] as? String == "pending")

            let weak = try await anonymous.post("/v1/auth/invitations/accept", json: ["invitation": secret, "password": "password123"])
            #expect(weak.status == 422 && weak.errorPointers == ["/password"])
            let wrongEmail = try await anonymous.post(
                "/v1/auth/invitations/accept", json: ["invitation": secret, "email": "other@example.com", "password": "developer passphrase"])
            #expect(wrongEmail.status == 422 && wrongEmail.errorPointers == ["/email"])
            let accepted = try await anonymous.post("/v1/auth/invitations/accept", json: ["invitation": secret, "password": "developer passphrase"])
            #expect(accepted.status == 200, "\(accepted.text)")
            let dev = try Self.session(accepted)
            let reused = try await anonymous.post("/v1/auth/invitations/accept", json: ["invitation": secret, "password": "developer passphrase"])
            #expect(reused.status == 422 && reused.errorPointers == ["/invitation"])

            // A revoked invitation no longer works; a made-up one neither.
            let second = try await asOwner.post("/v1/workspaces/default/invitations", json: ["email": "qa@example.com", "role": "viewer"])
            let secondID = try #require(second.object["id"] as? String)
            #expect(try await asOwner.delete("/v1/workspaces/default/invitations/\(secondID)").object["state"] as? String == "revoked")
            let revoked = try await anonymous.post(
                "/v1/auth/invitations/accept", json: ["invitation": try #require(second.object["secret"] as? String), "password": "qa passphrase 123"])
            #expect(revoked.status == 422)
            #expect(try await anonymous.post("/v1/auth/invitations/accept", json: ["invitation": "kln_nope", "password": "whatever 12345"]).status == 422)

            // Members: the developer is one; a member cannot change roles; admins cannot make owners.
            let members = try await asOwner.get("/v1/workspaces/default/members").array
            #expect(Set(members.compactMap { ($0["user"] as? [String: Any])?["email"] as? String }) == ["dev@example.com", "owner@example.com"])
            let asDev = admin.with(token: dev.secret)
            #expect(try await asDev.patch("/v1/workspaces/default/members/\(owner.userID)", json: ["role": "viewer"]).status == 403)
            #expect(try await admin.patch("/v1/workspaces/default/members/\(dev.userID)", json: ["role": "owner"]).status == 403)

            // A role change is effective on the member's next request.
            #expect(try await asDev.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            #expect(try await asOwner.patch("/v1/workspaces/default/members/\(dev.userID)", json: ["role": "viewer"]).object["role"] as? String == "viewer")
            #expect(try await asDev.post("/v1/projects", json: ["slug": "api", "name": "API"]).status == 403)

            // The last owner can be neither demoted nor removed; with a second owner, both work.
            let demoteSelf = try await asOwner.patch("/v1/workspaces/default/members/\(owner.userID)", json: ["role": "admin"])
            #expect(demoteSelf.status == 409, "\(demoteSelf.text)")
            #expect(try await asOwner.delete("/v1/workspaces/default/members/\(owner.userID)").status == 409)
            #expect(try await asOwner.patch("/v1/workspaces/default/members/\(dev.userID)", json: ["role": "owner"]).status == 200)
            #expect(try await asOwner.patch("/v1/workspaces/default/members/\(owner.userID)", json: ["role": "admin"]).status == 200)

            // Removing a member ends their access, and their sign-in session, at once.
            #expect(try await asDev.delete("/v1/workspaces/default/members/\(owner.userID)").status == 204)
            #expect(try await asOwner.get("/v1/workspaces/default/members").status == 401)

            // Another workspace's members, invitations and audit log are 404, like everything of another workspace.
            let acme = try await server.cluster.catalog.createWorkspace(slug: "acme", name: "Acme")
            let (_, acmeAdmin) = try await server.cluster.catalog.createToken(
                .init(name: "acme", tokenClass: .workspace, workspaceID: acme.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
            let acmeInvite = try await admin.with(token: acmeAdmin).post(
                "/v1/workspaces/acme/invitations", json: ["email": "x@example.com", "role": "member"])
            let acmeInvitationID = try #require(acmeInvite.object["id"] as? String)
            #expect(try await asDev.get("/v1/workspaces/acme/members").status == 404)
            #expect(try await asDev.get("/v1/workspaces/acme/audit").status == 404)
            #expect(try await asDev.patch("/v1/workspaces/acme/members/\(dev.userID)", json: ["role": "viewer"]).status == 404)
            #expect(try await asDev.delete("/v1/workspaces/default/invitations/\(acmeInvitationID)").status == 404)
            #expect(try await admin.with(token: acmeAdmin).delete("/v1/workspaces/acme/members/\(dev.userID)").status == 404)

            // An expired invitation is refused and changes nothing.
            let late = try await asDev.post("/v1/workspaces/default/invitations", json: ["email": "late@example.com", "role": "member"])
            let lateID = try #require(late.object["id"] as? String)
            try await server.cluster.catalog.server.run { connection in
                try await connection.query(
                    "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = \(lateID)", logger: Logger(label: "test"))
            }
            #expect(try await asDev.get("/v1/workspaces/default/invitations").array.first { $0["id"] as? String == lateID }?["state"] as? String == "expired")
            let expired = try await anonymous.post(
                "/v1/auth/invitations/accept", json: ["invitation": try #require(late.object["secret"] as? String), "password": "late passphrase 1"])
            #expect(expired.status == 422 && expired.errorPointers == ["/invitation"])
            #expect(try await server.cluster.catalog.credentials(email: "late@example.com") == nil, "no account was made")
        }
    }

    @Test func theAuditRowExistsExactlyWhenItsChangeCommitted() async throws {
        try await withServer { server, admin in
            let owner = try await Self.becomeOwner(server)
            let asOwner = admin.with(token: owner.secret)
            let invite = try await asOwner.send(
                .POST, "/v1/workspaces/default/invitations",
                body: try JSONSerialization.data(withJSONObject: ["email": "dev@example.com", "role": "member"]),
                headers: [("X-Request-Id", "trace-42")])
            #expect(invite.status == 201)
            #expect(invite.headers.first(name: "x-request-id") == "trace-42")
            let token = try await admin.post("/v1/workspaces/default/tokens", json: ["name": "ci", "class": "workspace", "role": "member"])
            let tokenID = try #require(token.object["id"] as? String)

            let audit = try await asOwner.get("/v1/workspaces/default/audit").object
            let items = try #require(audit["items"] as? [[String: Any]])
            let actions = items.compactMap { $0["action"] as? String }
            #expect(Array(actions.prefix(3)) == ["token.created", "invitation.created", "invitation.accepted"], "\(actions)")
            let created = try #require(items.first { $0["action"] as? String == "invitation.created" })
            #expect(created["requestId"] as? String == "trace-42")
            #expect(created["clientAddress"] as? String == "127.0.0.1")
            #expect((created["actor"] as? [String: Any])?["id"] as? String == owner.userID)
            #expect((items.first?["target"] as? [String: Any])?["id"] as? String == tokenID)
            // Filters and pages.
            let onlyTokens = try await asOwner.get("/v1/workspaces/default/audit?action=token.created").object["items"] as? [[String: Any]]
            #expect(onlyTokens?.count == 1)
            let page = try await asOwner.get("/v1/workspaces/default/audit?limit=1").object
            let next = try #require(page["nextCursor"] as? String)
            let rest = try await asOwner.get("/v1/workspaces/default/audit?limit=10&cursor=\(next)").object["items"] as? [[String: Any]]
            #expect(rest?.count == items.count - 1)
            // Members who are not admins do not read it.
            #expect(try await admin.post("/v1/workspaces/default/tokens", json: ["name": "v", "class": "workspace", "role": "viewer"]).status == 201)

            // A change whose audit row cannot be written does not happen: make the insert fail in PostgreSQL.
            let catalog = server.cluster.catalog.server
            try await catalog.run { connection in
                try await connection.query(
                    """
                    CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF NEW.action = 'member.role_changed' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$
                    """, logger: Logger(label: "test"))
                try await connection.query(
                    "CREATE TRIGGER refuse_audit AFTER INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
                    logger: Logger(label: "test"))
            }
            let second = try await asOwner.post("/v1/workspaces/default/invitations", json: ["email": "qa@example.com", "role": "admin"])
            let qa = try Self.session(
                try await APIClient(baseURL: server.baseURL, token: nil).post(
                    "/v1/auth/invitations/accept", json: ["invitation": try #require(second.object["secret"] as? String), "password": "qa passphrase 123"]))
            let failed = try await asOwner.patch("/v1/workspaces/default/members/\(qa.userID)", json: ["role": "viewer"])
            #expect(failed.status == 500)
            let role = try await asOwner.get("/v1/workspaces/default/members").array
                .first { ($0["user"] as? [String: Any])?["id"] as? String == qa.userID }?["role"] as? String
            #expect(role == "admin", "the role change rolled back with its audit row")
            let changes = try await asOwner.get("/v1/workspaces/default/audit?action=member.role_changed").object["items"] as? [[String: Any]]
            #expect(changes?.isEmpty == true)

            // Changes to the workspace's data are in the same log, from the shard's own transactions.
            let project = try await asOwner.send(
                .POST, "/v1/projects", body: try JSONSerialization.data(withJSONObject: ["slug": "web", "name": "Web"]),
                headers: [("X-Request-Id", "trace-43")])
            #expect(project.status == 201)
            #expect(try await asOwner.put(
                "/v1/projects/web/flaky-policy",
                json: ["window": 20, "threshold": 0.3, "minResults": 5, "minFlips": 2, "infraFailureRatio": 0.5, "infraMinCases": 10]).status == 200)
            let merged = try #require(try await asOwner.get("/v1/workspaces/default/audit?limit=3").object["items"] as? [[String: Any]])
            #expect(merged.compactMap { $0["action"] as? String } == ["flaky_policy.updated", "project.created", "invitation.accepted"])
            #expect(merged[1]["requestId"] as? String == "trace-43")
            #expect((merged[1]["target"] as? [String: Any])?["id"] as? String == project.object["id"] as? String)
            for shardServer in server.cluster.servers {
                try await shardServer.run { connection in
                    try await connection.query(
                        """
                        CREATE OR REPLACE FUNCTION refuse_defect_audit() RETURNS trigger LANGUAGE plpgsql AS $$
                        BEGIN IF NEW.action = 'defect.created' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$
                        """, logger: Logger(label: "test"))
                    try await connection.query(
                        "CREATE TRIGGER refuse_defect_audit AFTER INSERT ON workspace_audit_events FOR EACH ROW EXECUTE FUNCTION refuse_defect_audit()",
                        logger: Logger(label: "test"))
                }
            }
            #expect(try await asOwner.post("/v1/projects/web/defects", json: ["title": "Breaks"]).status == 500)
            #expect((try await asOwner.get("/v1/projects/web/defects").object["items"] as? [[String: Any]])?.isEmpty == true)
        }
    }

    @Test func operatorsListAccountsByLastSignIn() async throws {
        try await withServer { server, admin in
            let owner = try await Self.becomeOwner(server)
            let accounts = AccountService(repository: server.cluster.catalog, passwords: BcryptPasswordHasher(cost: 4))
            let (_, link) = try await accounts.createAccount(email: "second@example.com", name: "Second")
            let anonymous = APIClient(baseURL: server.baseURL, token: nil)
            #expect(try await anonymous.post("/v1/auth/password-links/redeem", json: ["link": link, "password": "second passphrase"]).status == 204)
            let used = try await anonymous.post("/v1/auth/password-links/redeem", json: ["link": link, "password": "second passphrase"])
            #expect(used.status == 422 && used.errorPointers == ["/link"], "a link works once")
            let second = try Self.session(try await Self.login(server, "second@example.com", "second passphrase"))

            let list = try await admin.with(token: owner.secret).get("/v1/admin/users")
            #expect(list.status == 200, "\(list.text)")
            #expect(list.array.compactMap { $0["email"] as? String } == ["second@example.com", "owner@example.com"])
            #expect(list.array.allSatisfy { $0["passwordHash"] == nil })
            // Not an operator; not a sign-in session.
            #expect(try await admin.with(token: second.secret).get("/v1/admin/users").status == 403)
            #expect(try await admin.get("/v1/admin/users").status == 403)
        }
    }
}
