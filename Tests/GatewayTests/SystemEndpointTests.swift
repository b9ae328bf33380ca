import Foundation
import KaizenTestSupport
import Testing

@Suite struct SystemEndpointTests {
    @Test func healthVersionAndDocumentNeedNoToken() async throws {
        try await withServer { _, admin in
            let anonymous = admin.with(token: nil)
            // A probe that times out on a loaded machine reports the server unavailable (as it should):
            // ask until the healthy answer comes, within a deadline.
            var health = try await anonymous.get("/healthz")
            let deadline = ContinuousClock.now + .seconds(testConditionTimeout)
            while health.status != 200, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                health = try await anonymous.get("/healthz")
            }
            #expect(health.status == 200)
            #expect(health.object["status"] as? String == "ok")
            let servers = health.object["servers"] as? [[String: Any]] ?? []
            #expect(servers.count == 2)
            #expect(servers.allSatisfy { $0["status"] as? String == "ok" })
            #expect(health.object["workspaceActors"] as? Int != nil)

            let version = try await anonymous.get("/version")
            #expect(version.status == 200)
            #expect(version.object["apiVersion"] as? String == "v1")

            let document = try await anonymous.get("/v1/openapi.json")
            #expect(document.status == 200)
            #expect(document.object["openapi"] as? String == "3.1.0")
            let paths = document.object["paths"] as? [String: Any] ?? [:]
            for path in ["/v1/projects", "/v1/projects/{project}", "/v1/workspaces/{workspace}/tokens", "/healthz"] {
                #expect(paths[path] != nil, "document lacks \(path)")
            }
        }
    }

    /// The served document is valid OpenAPI 3.1 according to an independent validator.
    @Test func servedDocumentPassesOpenAPISpecValidator() async throws {
        try await withServer { _, admin in
            let document = try await admin.with(token: nil).get("/v1/openapi.json")
            let file = NSTemporaryDirectory() + "kaizen-openapi-\(UUID().uuidString).json"
            try document.body.write(to: URL(fileURLWithPath: file))
            defer { try? FileManager.default.removeItem(atPath: file) }
            let result = try await run([
                "python3", "-c",
                "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')",
                file,
            ])
            #expect(result.status == 0, "openapi-spec-validator: \(result.error)")
            #expect(result.output.contains("valid"))
        }
    }

    @Test func unknownRoutesAre404InTheEnvelope() async throws {
        try await withServer { _, admin in
            let reply = try await admin.get("/v1/nothing-here")
            #expect(reply.status == 404)
            #expect(reply.errorCode == "not_found")
            #expect(reply.errorMessage?.contains("/v1/nothing-here") == true)
            let outside = try await admin.with(token: nil).get("/nope")
            #expect(outside.status == 404)
            #expect(outside.errorCode == "not_found")
        }
    }

    @Test func anonymousAndBadTokensGet401() async throws {
        try await withServer { _, admin in
            let anonymous = try await admin.with(token: nil).get("/v1/projects")
            #expect(anonymous.status == 401)
            #expect(anonymous.errorCode == "unauthorized")
            #expect(anonymous.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true)

            let foreign = try await admin.with(token: "ghp_notours").get("/v1/projects")
            #expect(foreign.status == 401)
            let unknown = try await admin.with(token: "krt_" + String(repeating: "a", count: 43)).get("/v1/projects")
            #expect(unknown.status == 401)
            let basic = try await admin.with(token: nil).send(.GET, "/v1/projects", headers: [("Authorization", "Basic eDp5")])
            #expect(basic.status == 401)
        }
    }

    @Test func meDescribesTheCaller() async throws {
        try await withServer { _, admin in
            let me = try await admin.get("/v1/me")
            #expect(me.status == 200)
            let token = me.object["token"] as? [String: Any] ?? [:]
            #expect(token["class"] as? String == "workspace")
            let workspaces = me.object["workspaces"] as? [[String: Any]] ?? []
            #expect(workspaces.map { $0["slug"] as? String } == ["default"])
            #expect(workspaces.first?["role"] as? String == "admin")
        }
    }
}
