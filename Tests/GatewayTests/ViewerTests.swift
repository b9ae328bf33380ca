import Foundation
import KaizenTestSupport
import NIOHTTP1
import Testing

/// Issue 14: a viewer gets 403 on every change, everywhere. The operations are enumerated from the
/// served OpenAPI document — every POST, PUT, PATCH and DELETE — so that a new operation is covered (or
/// the test fails for want of a request body for it) without anyone remembering to add it.
@Suite struct ViewerTests {
    /// Operations a viewer may call because they change only the caller's own session, password or inbox, or
    /// need no credential at all (the document marks those `security: []`).
    static let selfService: Set<String> = [
        "logout", "changePassword", "markNotificationRead", "markAllNotificationsRead", "deleteNotification", "putNotificationPreferences",
    ]

    @Test func aViewerIsRefusedEveryChangeOfTheDocument() async throws {
        try await withServer { server, admin in
            // Real resources for every path parameter, so that a 404 cannot hide a missing 403.
            let owner = try await PeopleTests.becomeOwner(server)
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let pushed = try await admin.post(
                "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "seed", cases: [testCase("breaks", "failed")]))
            let runID = try #require(pushed.object["internalRunId"] as? String)
            let caseID = try #require(
                (try await admin.get("/v1/runs/\(runID)/cases").object["items"] as? [[String: Any]])?.first?["caseId"] as? String)
            let defectID = try #require(try await admin.post("/v1/projects/web/defects", json: ["title": "Breaks"]).object["id"] as? String)
            let tokenID = try #require(
                try await admin.post("/v1/workspaces/default/tokens", json: ["name": "ci", "class": "workspace", "role": "member"])
                    .object["id"] as? String)
            let invitationID = try #require(
                try await admin.post("/v1/workspaces/default/invitations", json: ["email": "later@example.com", "role": "member"])
                    .object["id"] as? String)

            let hook = try await admin.post(
                "/v1/projects/web/webhooks", json: ["url": "https://hooks.example.com/kaizen", "events": ["case.released"]])
            let webhookID = try #require((hook.object["webhook"] as? [String: Any])?["id"] as? String)
            let deliveryID = try #require(try await admin.post("/v1/webhooks/\(webhookID)/ping", json: [String: Any]()).object["id"] as? String)

            // Two viewers: a person who accepted a viewer invitation (bearer and cookie), and a viewer workspace token.
            let invite = try await admin.post("/v1/workspaces/default/invitations", json: ["email": "viewer@example.com", "role": "viewer"])
            let viewer = try PeopleTests.session(
                try await APIClient(baseURL: server.baseURL, token: nil).post(
                    "/v1/auth/invitations/accept",
                    json: ["invitation": try #require(invite.object["secret"] as? String), "password": "viewer passphrase"]))
            let viewerToken = try #require(
                try await admin.post("/v1/workspaces/default/tokens", json: ["name": "dash", "class": "workspace", "role": "viewer"])
                    .object["secret"] as? String)

            let parameters = [
                "workspace": "default", "project": "web", "runId": runID, "caseId": caseID, "defectId": defectID,
                "tokenId": tokenID, "userId": owner.userID, "invitationId": invitationID, "webhookId": webhookID,
                "deliveryId": deliveryID,
            ]
            // A valid body per operation: a viewer must be refused for what they may not do, not for a bad body.
            let bodies: [String: Any] = [
                "createWorkspace": ["slug": "viewers", "name": "Viewers"],
                "createToken": ["name": "mine", "class": "workspace", "role": "viewer"],
                "createProject": ["slug": "api", "name": "API"],
                "initKenshoIngest": ["workspaceSlug": "default", "projectSlug": "web", "externalRunId": "viewer-run"],
                "finalizeKenshoIngest": runDocument(externalRunId: "viewer-run", cases: [testCase("works", "passed")]),
                "updateCase": ["labels": ["viewer"]],
                "putFlakyPolicy": ["window": 30, "threshold": 0.2, "minResults": 5, "minFlips": 2, "infraFailureRatio": 0.5, "infraMinCases": 10],
                "createDefect": ["title": "Viewer's defect"],
                "updateDefect": ["status": "resolved"],
                "updateMember": ["role": "viewer"],
                "createInvitation": ["email": "friend@example.com", "role": "viewer"],
                "putQualityGate": ["rules": [["rule": "maxFailures", "limit": 0]]],
                "quarantineCase": ["reason": "a viewer's wish"],
                "putQuarantinePolicy": ["autoQuarantine": true, "releaseAfterCleanPasses": 5],
                "createWebhook": ["url": "https://evil.example.com/", "events": ["run.finalized"]],
                "updateWebhook": ["url": "https://evil.example.com/"],
                "rotateWebhookSecret": ["graceSeconds": 0],
                "redeliverWebhookDelivery": [String: Any](),
                "pingWebhook": [String: Any](),
            ]

            let document = try await admin.get("/v1/openapi.json").object
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var checked: [String] = []
            for (template, item) in paths.sorted(by: { $0.key < $1.key }) {
                for method in ["post", "put", "patch", "delete"] {
                    guard let operation = item[method] as? [String: Any], let id = operation["operationId"] as? String else { continue }
                    if let security = operation["security"] as? [Any], security.isEmpty { continue }
                    if Self.selfService.contains(id) { continue }
                    var path = template
                    for (name, value) in parameters { path = path.replacingOccurrences(of: "{\(name)}", with: value) }
                    #expect(!path.contains("{"), "\(id): no value for a path parameter of \(template)")
                    let hasBody = operation["requestBody"] != nil
                    let body = try bodies[id].map { try JSONSerialization.data(withJSONObject: $0) }
                    #expect(!hasBody || body != nil, "\(id) takes a body: add a valid one to `bodies`")
                    let verb = HTTPMethod(rawValue: method.uppercased())
                    let asToken = try await admin.with(token: viewerToken).send(verb, path, body: body)
                    #expect(asToken.status == 403, "\(id) as a viewer workspace token: \(asToken.status) \(asToken.text)")
                    let asPerson = try await admin.with(token: viewer.secret).send(verb, path, body: body)
                    #expect(asPerson.status == 403, "\(id) as a viewer's session: \(asPerson.status) \(asPerson.text)")
                    let asCookie = try await APIClient(baseURL: server.baseURL, token: nil).send(
                        verb, path, body: body, headers: [("Cookie", viewer.cookie), ("X-CSRF-Token", viewer.csrf)])
                    #expect(asCookie.status == 403, "\(id) with a viewer's cookie: \(asCookie.status) \(asCookie.text)")
                    checked.append(id)
                }
            }
            // Operations without a body: revokeToken, removeMember, revokeInvitation, releaseCase, deleteWebhook.
            #expect(checked.count == bodies.count + 5, "every change was tried: \(checked.sorted())")
            let kept = try await admin.get("/v1/webhooks/\(webhookID)")
            #expect(kept.object["url"] as? String == "https://hooks.example.com/kaizen")
            // Nothing changed: the second project, the defect's status, the policy are as the admin left them.
            #expect(try await admin.get("/v1/projects").array.count == 1)
            #expect(try await admin.get("/v1/defects/\(defectID)").object["status"] as? String == "open")
            #expect(try await admin.get("/v1/projects/web/gate").object["isDefault"] as? Bool == true)
            #expect((try await admin.get("/v1/projects/web/quarantine").object["items"] as? [Any])?.isEmpty == true)
        }
    }
}
