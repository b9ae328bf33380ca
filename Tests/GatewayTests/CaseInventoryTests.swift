import Foundation
import KaizenTestSupport
import Testing

/// A case keeps one inventory id across runs, whether its id comes from the workspace actor's cache
/// (consecutive finalizes), from the shard (after a restart) or is new.
@Suite struct CaseInventoryTests {
    func caseIDs(_ admin: APIClient, run: String) async throws -> [String: String] {
        let page = try await admin.get("/v1/runs/\(run)/cases")
        return Dictionary(
            uniqueKeysWithValues: (page.object["items"] as? [[String: Any]] ?? []).map {
                ($0["name"] as! String, $0["caseId"] as! String)
            })
    }

    func push(_ admin: APIClient, _ id: String, _ names: [String]) async throws -> String {
        let reply = try await admin.post(
            "/v1/ingest/kensho/finalize", json: runDocument(externalRunId: id, cases: names.map { testCase($0, "passed") }))
        #expect(reply.status == 200, "\(reply.text)")
        return try #require(reply.object["internalRunId"] as? String)
    }

    @Test func idsAreStableThroughCacheShardAndRestart() async throws {
        var server = try await TestServer.start()
        do {
            let admin = APIClient(baseURL: server.baseURL, token: server.adminToken)
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let first = try await caseIDs(admin, run: try await push(admin, "r1", ["a", "b"]))
            let second = try await caseIDs(admin, run: try await push(admin, "r2", ["a", "b", "c"]))
            server = try await server.restart()
            let admin2 = APIClient(baseURL: server.baseURL, token: server.adminToken)
            let third = try await caseIDs(admin2, run: try await push(admin2, "r3", ["a", "c", "d"]))
            let fourth = try await caseIDs(admin2, run: try await push(admin2, "r4", ["a", "d", "e"]))

            #expect(first["a"] != nil && Set([first["a"], second["a"], third["a"], fourth["a"]]).count == 1)
            #expect(first["b"] == second["b"])
            #expect(second["c"] != nil && second["c"] == third["c"])
            #expect(third["d"] != nil && third["d"] == fourth["d"])
            #expect(Set([fourth["a"], fourth["d"], fourth["e"]]).count == 3)

            let detail = try await admin2.get("/v1/runs/\(try await push(admin2, "r5", ["a"]))/cases/\(first["a"]!)")
            #expect((detail.object["history"] as? [[String: Any]])?.count == 5)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}
