import Foundation
import Logging
import KaizenTestSupport
import PostgresNIO
import Storage
import Testing

/// A finalize that fails at its last big write leaves nothing behind, and the same run pushed again
/// afterwards is stored normally: the transaction, not luck, decides what is visible.
@Suite struct AtomicFinalizeTests {
    /// A trigger that refuses a case with a step named `boom`: the failure comes from PostgreSQL in the middle of
    /// the steps COPY, after the inventory, the run row and every result were written.
    static let trap: [PostgresQuery] = [
        """
        CREATE OR REPLACE FUNCTION kaizen_test_boom() RETURNS trigger AS $$
        BEGIN
            IF NEW.steps LIKE '%"boom"%' THEN RAISE EXCEPTION 'injected failure'; END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql
        """,
        "CREATE TRIGGER kaizen_test_boom BEFORE INSERT ON case_steps FOR EACH ROW EXECUTE FUNCTION kaizen_test_boom()",
    ]

    static let logger = Logger(label: "kaizen.tests")

    func count(_ server: TestServer, _ table: String, workspace: String) async throws -> Int {
        var total = 0
        for physical in server.cluster.servers {
            total += try await physical.run { connection in
                var n = 0
                for try await value in try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT count(*)::int FROM \(table) WHERE workspace_id = $1", binds: {
                        var binds = PostgresBindings()
                        binds.append(workspace)
                        return binds
                    }()), logger: Self.logger
                ).decode(Int.self) { n = value }
                return n
            }
        }
        return total
    }

    @Test func aFailureMidTransactionStoresNothing() async throws {
        try await withServer { server, admin in
            for physical in server.cluster.servers {
                for statement in Self.trap { _ = try await physical.run { try await $0.query(statement, logger: Self.logger) } }
            }
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let workspace = try #require(try await server.cluster.catalog.workspace(slug: "default")).id
            let good = (0..<2_000).map { testCase("case \($0)", $0 % 10 == 0 ? "failed" : "passed", steps: [["name": "ok", "status": "passed"]]) }
            let poisoned = good + [testCase("last", "passed", steps: [["name": "boom", "status": "passed"]])]

            let failed = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "atomic", cases: poisoned))
            #expect(failed.status == 500, "\(failed.text.prefix(300))")
            #expect(failed.errorCode == "internal")
            for table in ["runs", "cases", "case_results", "case_steps", "jobs"] {
                #expect(try await count(server, table, workspace: workspace) == 0, "\(table) kept rows of the failed finalize")
            }

            // The same externalRunId, without the poison, is a first push: stored, not a replay.
            let stored = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "atomic", cases: good))
            #expect(stored.status == 200, "\(stored.text.prefix(300))")
            #expect(stored.object["replayed"] as? Bool == false)
            #expect(regression(stored)["newFailures"] as? Int == 200)
            #expect(try await count(server, "runs", workspace: workspace) == 1)
            #expect(try await count(server, "cases", workspace: workspace) == 2_000)
            #expect(try await count(server, "case_steps", workspace: workspace) == 2_000)
        }
    }
}
