import Dispatch
import Foundation
import Synchronization
import KaizenTestSupport
import Testing

/// Starts a server, runs `body` with an admin client of its `default` workspace, stops it.
func withServer<T: Sendable>(
    configure: (inout KaizenServer.KaizenConfiguration) -> Void = { _ in },
    _ body: (TestServer, APIClient) async throws -> T
) async throws -> T {
    let server = try await TestServer.start(configure: configure)
    do {
        let result = try await body(server, APIClient(baseURL: server.baseURL, token: server.adminToken))
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

/// Waits until `runs` post-ingest roll-up jobs of the workspace are done (`testConditionTimeout` at most).
func waitForRollUps(_ admin: APIClient, workspace: String = "default", runs: Int) async throws {
    try await waitUntil("\(runs) roll-up jobs are done") {
        try await admin.get("/v1/workspaces/\(workspace)/jobs?state=done").array.count >= runs
    }
}

/// Mints a token in `workspace` through the API and returns a client using it.
func mint(
    _ admin: APIClient, workspace: String = "default", tokenClass: String = "workspace", role: String,
    user: String? = nil, ttl: Int? = nil
) async throws -> APIClient {
    var body: [String: Any] = ["name": "\(role) token", "class": tokenClass, "role": role]
    if let user { body["user"] = ["email": user] }
    if let ttl { body["ttlSeconds"] = ttl }
    let reply = try await admin.post("/v1/workspaces/\(workspace)/tokens", json: body)
    #expect(reply.status == 201, "minting failed: \(reply.text)")
    let secret = try #require(reply.object["secret"] as? String)
    return admin.with(token: secret)
}

/// Runs a command to completion off the cooperative pool: exit status, stdout and stderr.
func run(_ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
    try await runCommand(arguments)
}

import KaizenServer

/// For a cluster `g` of `failure_groups`: its five most recently struck cases recomputed from its pairs, as
/// `top.ids` and `top.ats` — what the roll-up keeps in `recent_cases` and `recent_seen` (migration 20).
let clusterTopFive = """
    CROSS JOIN LATERAL (
        SELECT array_agg(t.case_id ORDER BY t.last_seen_at DESC, t.case_id) AS ids,
               array_agg(t.last_seen_at ORDER BY t.last_seen_at DESC, t.case_id) AS ats
        FROM (SELECT case_id, last_seen_at FROM failure_group_cases c
              WHERE c.workspace_id = g.workspace_id AND c.project_id = g.project_id AND c.fingerprint = g.fingerprint
              ORDER BY last_seen_at DESC, case_id LIMIT 5) t) top
    """
