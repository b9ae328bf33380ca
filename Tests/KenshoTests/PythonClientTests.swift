import Foundation
import KaizenTestSupport
import Testing

/// The published OpenAPI document is good for SDK generation: `openapi-python-client` (PyPI; `.ci/run`
/// installs it) generates a Python client from `/v1/openapi.json` of a live server, and that client
/// lists projects, pushes a run and reads it back.
@Suite struct PythonClientTests {
    static let script = """
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from kaizen_client_py import AuthenticatedClient
        from kaizen_client_py.api.projects import list_projects
        from kaizen_client_py.api.ingest import finalize_kensho_ingest
        from kaizen_client_py.api.runs import get_run
        from kaizen_client_py.models import KenshoRun, FinalizeResponse, Run
        client = AuthenticatedClient(base_url=sys.argv[2], token=sys.argv[3], raise_on_unexpected_status=True)
        projects = list_projects.sync(client=client)
        run = KenshoRun.from_dict({
            "schemaVersion": "kensho/v1", "project": {"slug": "web"}, "externalRunId": "py-1", "branch": "main",
            "totals": {"passed": 1, "failed": 1, "skipped": 0, "broken": 0, "flaky": 0},
            "cases": [{"name": "ok", "status": "passed"}, {"name": "bad", "status": "failed", "error": {"message": "boom"}}],
        })
        finalized = finalize_kensho_ingest.sync(client=client, body=run)
        assert isinstance(finalized, FinalizeResponse), finalized
        fetched = get_run.sync(client=client, run_id=finalized.internal_run_id)
        assert isinstance(fetched, Run), fetched
        print(json.dumps({
            "projects": [p.slug for p in projects],
            "runId": finalized.internal_run_id,
            "newFailures": finalized.regression.new_failures,
            "fetchedExternalRunId": fetched.external_run_id,
            "fetchedFailed": fetched.totals.failed,
        }))
        """

    @Test func generatedPythonClientListsPushesAndReads() async throws {
        try await PushTests.withProject { server, admin in
            let root = NSTemporaryDirectory() + "kaizen-py-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: root) }
            let document = try await admin.get("/v1/openapi.json")
            try document.body.write(to: URL(fileURLWithPath: root + "/openapi.json"))
            try Data(Self.script.utf8).write(to: URL(fileURLWithPath: root + "/use.py"))

            let generate = try await shell(
                ["python3", "-m", "openapi_python_client", "generate", "--path", root + "/openapi.json", "--output-path",
                 root + "/kaizen_client_py", "--meta", "none"], in: root)
            #expect(generate.status == 0, "openapi-python-client failed (pip install openapi-python-client): \(generate.output)")
            let used = try await shell(["python3", root + "/use.py", root, server.baseURL, server.adminToken], in: root)
            try #require(used.status == 0, "\(used.output)")
            let line = used.output.split(separator: "\n").last.map(String.init) ?? ""
            let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            #expect(result["projects"] as? [String] == ["web"])
            #expect(result["newFailures"] as? Int == 1)
            #expect(result["fetchedExternalRunId"] as? String == "py-1")
            #expect(result["fetchedFailed"] as? Int == 1)
            #expect((result["runId"] as? String)?.hasPrefix("run_") == true)
        }
    }

    func shell(_ arguments: [String], in directory: String) async throws -> (status: Int32, output: String) {
        try await runProcess("/usr/bin/env", arguments, directory: directory)
    }
}
