import Foundation
import KaizenTestSupport
import Storage
import Testing

/// Issue 11 §10: the OpenAPI document tells the truth. Schemathesis (PyPI; `.ci/run` installs it)
/// runs every default check over every operation of the live server's `/v1/openapi.json`, 30
/// examples each, authenticated and anonymous: no server error and no conformance failure.
@Suite(.serialized) struct APIConformanceTests {
    @Test func schemathesisFindsNothing() async throws {
        try await withServer(configure: {
            // Thousands of requests in a minute: the limits are not what is under test here.
            $0.workspaceRateLimit = .init(perMinute: 1_000_000)
            $0.userRateLimit = .init(perMinute: 1_000_000)
            $0.finalizeQuota = .init(perMinute: 1_000_000)
        }) { server, admin in
            // Data for the operations to find: a project, a run with a failing case, a defect.
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let pushed = try await admin.post(
                "/v1/ingest/kensho/finalize",
                json: runDocument(externalRunId: "seed", cases: [testCase("works", "passed"), testCase("breaks", "failed")]))
            let runID = try #require(pushed.object["internalRunId"] as? String)
            let cases = try await admin.get("/v1/runs/\(runID)/cases").object["items"] as? [[String: Any]] ?? []
            let caseID = try #require(cases.first?["caseId"] as? String)
            let defect = try await admin.post("/v1/projects/web/defects", json: ["title": "Login breaks", "cases": [caseID]])
            let defectID = try #require(defect.object["id"] as? String, "\(defect.text)")

            // The fuzzer's own credential: an admin's personal token (no issuing workspace, so no
            // workspace lists it), which its stateful phase cannot find and revoke halfway through.
            let catalog = server.cluster.catalog
            let workspace = try #require(try await catalog.workspace(slug: "default"))
            let user = try await catalog.upsertUser(email: "schemathesis@example.com", name: "Schemathesis")
            try await catalog.setMembership(workspaceID: workspace.id, userID: user.id, role: .admin)
            let (_, token) = try await catalog.createToken(
                .init(
                    name: "schemathesis", tokenClass: .user, workspaceID: nil, role: nil, userID: user.id, createdBy: nil,
                    expiresAt: Date(timeIntervalSinceNow: 3600)))

            let root = NSTemporaryDirectory() + "kaizen-schemathesis-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: root) }
            let template = try String(contentsOfFile: Self.templatePath, encoding: .utf8)
            let config = template.replacingOccurrences(of: "@RUN_ID@", with: runID)
                .replacingOccurrences(of: "@CASE_ID@", with: caseID).replacingOccurrences(of: "@DEFECT_ID@", with: defectID)
            try Data(config.utf8).write(to: URL(fileURLWithPath: root + "/schemathesis.toml"))

            for (label, token) in [("authenticated", token), ("anonymous", nil)] {
                var arguments = [
                    "python3", "-c", "import sys; from schemathesis.cli import schemathesis as st; sys.argv[0] = 'schemathesis'; st()",
                    "--config-file", root + "/schemathesis.toml", "run", server.baseURL + "/v1/openapi.json",
                    "--report-dir", root + "/\(label)",
                ]
                if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
                let result = try await run(arguments)
                // The whole report, for reading after a failure (CI keeps .build).
                try? Data((result.output + result.error).utf8).write(
                    to: URL(fileURLWithPath: Self.logDirectory + "/schemathesis-\(label).log"))
                let summary = result.output.components(separatedBy: "FAILURES").last ?? result.output
                #expect(result.status == 0, "schemathesis (\(label)) found problems:\n\(summary.suffix(12_000))\n\(result.error.suffix(2_000))")
            }
        }
    }

    static var logDirectory: String {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    static var templatePath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ops/schemathesis/kaizen.toml.template").path
    }
}
