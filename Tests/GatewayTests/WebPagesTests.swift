import Foundation
import KaizenTestSupport
import Tenancy
import Testing

/// The pages' rules over plain HTTP (the browser test drives the same pages in Chromium): who may open
/// and post what, the CSRF proof on every form, cross-tenant 404s, one-time secrets, and the headers.
@Suite struct WebPagesTests {
    static func form(_ fields: [(String, String)]) -> Data {
        Data(
            fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&").utf8)
    }

    static func post(
        _ client: APIClient, _ path: String, _ fields: [(String, String)], cookie: String, origin: String? = nil
    ) async throws -> APIClient.Reply {
        var headers = [("Cookie", cookie)]
        if let origin { headers.append(("Origin", origin)) }
        return try await client.send(
            .POST, path, body: form(fields), contentType: "application/x-www-form-urlencoded", headers: headers)
    }

    @Test func setPasswordAndInvitationPagesWorkOnceAndOnlyFromKaizen() async throws {
        try await withServer { server, admin in
            _ = try await PeopleTests.becomeOwner(server)
            let browser = APIClient(baseURL: server.baseURL, token: nil)
            let page = try await browser.get("/set-password")
            #expect(page.status == 200 && page.text.contains("data-from-fragment"))
            #expect(page.headers.first(name: "content-security-policy")?.contains("script-src 'self'") == true)
            #expect(!page.text.contains("<script>"), "no inline script")

            let accounts = AccountService(repository: server.cluster.catalog, passwords: BcryptPasswordHasher(cost: 4))
            let (_, link) = try await accounts.createAccount(email: "second@example.com", name: "Second")
            // A weak password is refused with the API's reason, and the link still works afterwards.
            let weak = try await Self.post(browser, "/set-password", [("secret", link), ("password", "short")], cookie: "")
            #expect(weak.status == 422 && weak.text.contains("/password"), "\(weak.status) \(weak.text.prefix(400))")
            // Posted from another site: refused before anything is looked at.
            let foreign = try await Self.post(
                browser, "/set-password", [("secret", link), ("password", "a good passphrase")], cookie: "",
                origin: "https://evil.example")
            #expect(foreign.status == 403)
            // The whole link pasted works as well as its secret.
            let done = try await Self.post(
                browser, "/set-password", [("secret", server.baseURL + "/set-password#" + link), ("password", "a good passphrase")],
                cookie: "")
            #expect(done.status == 200 && done.text.contains("Password set"), "\(done.text.prefix(400))")
            let again = try await Self.post(browser, "/set-password", [("secret", link), ("password", "a good passphrase")], cookie: "")
            #expect(again.status == 422, "a link works once")
            #expect(try await PeopleTests.login(server, "second@example.com", "a good passphrase").status == 200)

            // An invitation accepted from its page makes the account (the browser test sees it sign in; this
            // client follows the redirect without the cookie, so it lands on the sign-in page).
            let invite = try await admin.post("/v1/workspaces/default/invitations", json: ["email": "third@example.com", "role": "member"])
            let secret = try #require(invite.object["secret"] as? String)
            let joined = try await Self.post(
                browser, "/invitations/accept", [("secret", secret), ("password", "third passphrase!")], cookie: "")
            #expect(joined.status == 200 && joined.text.contains("Sign in"), "\(joined.text.prefix(300))")
            #expect(try await PeopleTests.login(server, "third@example.com", "third passphrase!").status == 200)
        }
    }

    @Test func settingsAreForAdminsAndEveryFormNeedsTheSessionsProof() async throws {
        try await withServer { server, admin in
            let owner = try await PeopleTests.becomeOwner(server)
            let browser = APIClient(baseURL: server.baseURL, token: nil)
            let settings = try await browser.send(.GET, "/workspaces/default/settings", headers: [("Cookie", owner.cookie)])
            #expect(settings.status == 200 && settings.text.contains("first admin token"))
            #expect(!settings.text.contains(server.adminToken), "a token's secret is never listed")

            // Without the proof: refused, nothing made.
            let unproven = try await Self.post(browser, "/workspaces/default/tokens", [("name", "ci"), ("role", "member")], cookie: owner.cookie)
            #expect(unproven.status == 403)
            let forged = try await Self.post(
                browser, "/workspaces/default/tokens", [("csrf", "x" + owner.csrf), ("name", "ci"), ("role", "member")], cookie: owner.cookie)
            #expect(forged.status == 403)
            #expect((try await admin.get("/v1/workspaces/default/tokens").array).count == 1)

            // With it: the secret once, on this answer only.
            let made = try await Self.post(
                browser, "/workspaces/default/tokens", [("csrf", owner.csrf), ("name", "ci"), ("class", "workspace"), ("role", "member")],
                cookie: owner.cookie)
            #expect(made.status == 200)
            let secret = try #require(made.text.range(of: "krt_[A-Za-z0-9]+", options: .regularExpression).map { String(made.text[$0]) })
            #expect(made.headers.first(name: "cache-control") == "no-store")
            #expect(try await admin.with(token: secret).get("/v1/me").status == 200)
            let later = try await browser.send(.GET, "/workspaces/default/settings", headers: [("Cookie", owner.cookie)])
            #expect(!later.text.contains(secret))
            // The API's own validation, as the page's reason.
            let unnamed = try await Self.post(
                browser, "/workspaces/default/tokens", [("csrf", owner.csrf), ("name", " "), ("role", "member")], cookie: owner.cookie)
            #expect(unnamed.status == 422 && unnamed.text.contains("/name"), "\(unnamed.text.prefix(300))")

            // A member may not open settings or post to them, even with their own proof.
            let invite = try await admin.post("/v1/workspaces/default/invitations", json: ["email": "m@example.com", "role": "member"])
            let member = try PeopleTests.session(
                try await browser.post(
                    "/v1/auth/invitations/accept",
                    json: ["invitation": try #require(invite.object["secret"] as? String), "password": "member passphrase"]))
            #expect(try await browser.send(.GET, "/workspaces/default/settings", headers: [("Cookie", member.cookie)]).status == 403)
            let escalate = try await Self.post(
                browser, "/workspaces/default/members/\(member.userID)", [("csrf", member.csrf), ("role", "owner")], cookie: member.cookie)
            #expect(escalate.status == 403)
            let members = try await admin.get("/v1/workspaces/default/members").array
            #expect(members.contains { ($0["user"] as? [String: Any])?["id"] as? String == member.userID && $0["role"] as? String == "member" })
            // The owner demotes the member from the page; the audit page shows it.
            let demoted = try await Self.post(
                browser, "/workspaces/default/members/\(member.userID)", [("csrf", owner.csrf), ("role", "viewer")], cookie: owner.cookie)
            #expect(demoted.status == 200)
            let after = try await admin.get("/v1/workspaces/default/members").array
            #expect(after.contains { ($0["user"] as? [String: Any])?["id"] as? String == member.userID && $0["role"] as? String == "viewer" })
            let audit = try await browser.send(.GET, "/workspaces/default/audit", headers: [("Cookie", owner.cookie)])
            #expect(audit.status == 200 && audit.text.contains("member.role_changed"), "\(audit.text.prefix(300))")
            #expect(try await browser.send(.GET, "/workspaces/default/audit", headers: [("Cookie", member.cookie)]).status == 403)
        }
    }

    @Test func otherTenantsPagesAre404AndViewersGetNoForms() async throws {
        try await withServer { server, admin in
            let owner = try await PeopleTests.becomeOwner(server)
            let other = try await server.cluster.catalog.createWorkspace(slug: "other", name: "Other")
            let (_, secret) = try await server.cluster.catalog.createToken(
                .init(name: "x", tokenClass: .workspace, workspaceID: other.id, role: .admin, userID: nil, createdBy: nil, expiresAt: nil))
            let otherClient = admin.with(token: secret)
            #expect(try await otherClient.post("/v1/projects", json: ["slug": "theirs", "name": "Theirs"]).status == 201)
            let pushed = try await otherClient.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(project: "theirs", externalRunId: "b1", cases: [testCase("secret case", "failed")]))
            #expect(pushed.status == 200, "\(pushed.text)")
            let runID = try #require(pushed.object["internalRunId"] as? String)
            let caseID = try #require(
                (try await otherClient.get("/v1/runs/\(runID)/cases").object["items"] as? [[String: Any]])?.first?["caseId"] as? String)

            let browser = APIClient(baseURL: server.baseURL, token: nil)
            for path in [
                "/cases/\(caseID)", "/runs/\(runID)", "/runs/\(runID)/cases/\(caseID)", "/projects/theirs/clusters", "/projects/theirs/flaky",
                "/workspaces/other/settings", "/workspaces/other/audit", "/overview?workspace=other",
            ] {
                let reply = try await browser.send(.GET, path, headers: [("Cookie", owner.cookie)])
                #expect(reply.status == 404, "\(path): \(reply.status)")
                #expect(!reply.text.contains("secret case"))
            }
            let posted = try await Self.post(
                browser, "/cases/\(caseID)/annotate", [("csrf", owner.csrf), ("owner", "me")], cookie: owner.cookie)
            #expect(posted.status == 404)

            // In its own workspace, a viewer reads the clusters and flaky pages without any form, and a post is refused.
            let viewerToken = try await mint(otherClient, workspace: "other", tokenClass: "workspace", role: "viewer")
            try await waitForRollUps(otherClient, workspace: "other", runs: 1)
            let clusters = try await viewerToken.get("/projects/theirs/clusters")
            #expect(clusters.status == 200 && clusters.text.contains("expected 1, got 2") && !clusters.text.contains("method=\"post\""))
            let flaky = try await viewerToken.get("/projects/theirs/flaky")
            #expect(flaky.status == 200 && !flaky.text.contains("flaky-policy"))
            let refused = try await viewerToken.send(
                .POST, "/projects/theirs/clusters/defect", body: Self.form([("fingerprint", "x"), ("title", "t")]),
                contentType: "application/x-www-form-urlencoded")
            #expect(refused.status == 403)
            // Every page's script is Kaizen's own file.
            let script = try await browser.get("/assets/kaizen.js")
            #expect(script.status == 200 && script.headers.first(name: "content-type")?.hasPrefix("text/javascript") == true)
        }
    }

    /// A big run's report is one page of each list, not the run: at most 150 KB whatever the run's size, and
    /// its cursor leads on through the filtered cases.
    @Test func aBigRunsReportWeighsUnder150KB() async throws {
        try await withServer { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            func push(_ id: String, failing: (Int) -> Bool) async throws -> String {
                let cases = (0..<3_000).map { index -> [String: Any] in
                    var item = testCase(
                        "tests/checkout/test_cart_totals.py::test_total_with_discount_\(index)", failing(index) ? "failed" : "passed",
                        suite: "suite \(index % 60)")
                    if failing(index) {
                        item["error"] = ["type": "AssertionError", "message": "expected total \(index % 40) to equal the sum of its lines",
                                         "trace": String(repeating: "at Cart.total (cart.js:12)\n", count: 20)]
                    }
                    return item
                }
                let reply = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: id, cases: cases))
                #expect(reply.status == 200, "\(reply.text.prefix(300))")
                return try #require(reply.object["internalRunId"] as? String)
            }
            _ = try await push("b1") { $0 < 1_500 }
            let runID = try await push("b2") { $0 < 750 || (1_500..<2_250).contains($0) }
            let page = try await admin.get("/runs/\(runID)")
            #expect(page.status == 200)
            #expect(page.body.count <= 150 * 1024, "the report weighs \(page.body.count) bytes")
            // Every regression bucket holds 750 cases; the page lists the first 100 of each and says how many.
            #expect(page.text.components(separatedBy: "<span class=\"count\">750</span>").count - 1 == 3)
            let next = try #require(
                page.text.range(of: "href=\"(/runs/[^\"]+cursor=[^\"]+)\"", options: .regularExpression).map {
                    String(page.text[$0].dropFirst(6).dropLast()).replacingOccurrences(of: "&amp;", with: "&")
                })
            let second = try await admin.get(next)
            // The cases list of the second page starts after the first 100 (the regression above it is the same).
            let listed = second.text.components(separatedBy: "id=\"cases\"").last ?? ""
            #expect(second.status == 200 && listed.contains("test_total_with_discount_100<"), "\(next)")
            #expect(!listed.contains("test_total_with_discount_99<"))
        }
    }

    /// A member quarantines a case from its page (with the CSRF proof) and releases it; the reason is text;
    /// a viewer sees the state but no form, and a post of theirs is refused.
    @Test func aCaseIsQuarantinedAndReleasedFromItsPage() async throws {
        try await withServer { server, admin in
            let owner = try await PeopleTests.becomeOwner(server)
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            _ = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "b1", cases: [testCase("racy", "failed")]))
            try await waitForRollUps(admin, runs: 1)
            let caseID = try #require((try await admin.get("/v1/projects/web/cases").object["items"] as? [[String: Any]])?.first?["id"] as? String)
            let browser = APIClient(baseURL: server.baseURL, token: nil)

            let unproven = try await Self.post(browser, "/cases/\(caseID)/quarantine", [("reason", "x")], cookie: owner.cookie)
            #expect(unproven.status == 403)
            let posted = try await Self.post(
                browser, "/cases/\(caseID)/quarantine", [("csrf", owner.csrf), ("reason", "<i>racy</i> on CI")], cookie: owner.cookie)
            #expect([200, 302, 303].contains(posted.status), "\(posted.status) \(posted.text.prefix(300))")  // the client follows the redirect
            let quarantined = try await admin.get("/v1/cases/\(caseID)").object["quarantine"] as? [String: Any]
            #expect(quarantined?["reason"] as? String == "<i>racy</i> on CI")
            let page = try await browser.send(.GET, "/cases/\(caseID)", headers: [("Cookie", owner.cookie)])
            #expect(page.text.contains("quarantined</span> — &lt;i&gt;racy&lt;/i&gt; on CI") && page.text.contains(">Release</button>"))

            let viewer = try await mint(admin, role: "viewer")
            let seen = try await viewer.get("/cases/\(caseID)")
            #expect(seen.text.contains("quarantined</span>") && !seen.text.contains("action=\"/cases/\(caseID)/quarantine\""))

            let released = try await Self.post(
                browser, "/cases/\(caseID)/quarantine", [("csrf", owner.csrf), ("release", "1")], cookie: owner.cookie)
            #expect([200, 302, 303].contains(released.status))
            #expect(try await admin.get("/v1/cases/\(caseID)").object["quarantine"] == nil)
            let empty = try await Self.post(
                browser, "/cases/\(caseID)/quarantine", [("csrf", owner.csrf), ("reason", " ")], cookie: owner.cookie)
            #expect(empty.status == 200 && empty.text.contains("/reason"), "\(empty.status)")
        }
    }

}
