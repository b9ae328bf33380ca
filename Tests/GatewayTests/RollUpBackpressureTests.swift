import Foundation
import KaizenServer
import KaizenTestSupport
import Logging
import PostgresNIO
import Tenancy
import Testing

/// `KAIZEN_ROLLUP_MAX_BACKLOG` against real PostgreSQL: with a backlog of one, a project's finalize waits until
/// the roll-up of its previous run committed, so no run is ever stored while its predecessor is still pending.
@Suite struct RollUpBackpressureTests {
    static let logger = Logger(label: "kaizen.tests")

    @Test func withABacklogOfOneEachRunWaitsForThePreviousRollUp() async throws {
        try await pushFourRunsEachAfterThePreviousRollUp(RollUpBackpressure(maxPending: 1, maxWaitSeconds: 600))
    }

    /// `KAIZEN_ROLLUP_MAX_LAG_SECONDS` asks the database how long ago the oldest waiting run was finalized: with a
    /// limit far below any roll-up's time, every waiting run is too old, so again each run waits for the previous.
    @Test func withATinyLagLimitEachRunWaitsForThePreviousRollUp() async throws {
        try await pushFourRunsEachAfterThePreviousRollUp(RollUpBackpressure(maxLagSeconds: 0.000_001, maxWaitSeconds: 600))
    }

    /// The server's default policy (by age, a second) on a real server: pushes of one project go through and
    /// every run is rolled up.
    @Test func theDefaultPolicyLetsPushesThroughAndRollsEveryRunUp() async throws {
        let standard = try KaizenConfiguration.fromEnvironment([:]).rollUpBackpressure
        #expect(standard == .standard && !standard.isOff)
        _ = try await pushFourRunsAndWaitForTheirRollUps(standard, casesPerRun: 200, failingEvery: 5)
    }

    func pushFourRunsEachAfterThePreviousRollUp(_ policy: RollUpBackpressure) async throws {
        let runs = try await pushFourRunsAndWaitForTheirRollUps(policy, casesPerRun: 50, failingEvery: 7)
        // The database's own clock: each run's transaction began after its predecessor's roll-up began
        // (and, as it waited for the count to drop, after that roll-up committed).
        for (earlier, later) in zip(runs, runs.dropFirst()) {
            #expect(try #require(earlier.rolledUp) <= later.created, "run \(later.seq) was stored before run \(earlier.seq) was rolled up")
        }
    }

    /// Pushes four runs of one project under `policy` (each must answer 200) and returns them once every one is
    /// rolled up (the last without anyone waiting for it), in finalize order.
    func pushFourRunsAndWaitForTheirRollUps(_ policy: RollUpBackpressure, casesPerRun: Int, failingEvery: Int) async throws
        -> [(seq: Int64, created: Date, rolledUp: Date?)]
    {
        try await withServer(configure: { $0.rollUpBackpressure = policy }) { server, admin in
            #expect(try await admin.post("/v1/projects", json: ["slug": "web", "name": "Web"]).status == 201)
            let workspace = try #require(try await server.cluster.catalog.workspace(slug: "default")).id
            for round in 0..<4 {
                let cases = (0..<casesPerRun).map { testCase("case \($0)", ($0 + round) % failingEvery == 0 ? "failed" : "passed") }
                let pushed = try await admin.post("/v1/ingest/kensho/finalize", json: runDocument(externalRunId: "r\(round)", cases: cases))
                #expect(pushed.status == 200, "\(pushed.text.prefix(300))")
            }
            try await waitUntil("every run is rolled up") {
                let runs = try await Self.runs(server, workspace: workspace)
                return runs.count == 4 && runs.allSatisfy { $0.rolledUp != nil }
            }
            let runs = try await Self.runs(server, workspace: workspace)
            #expect(runs.count == 4 && runs.allSatisfy { $0.rolledUp != nil }, "runs not rolled up: \(runs)")
            return runs
        }
    }

    static func runs(_ server: TestServer, workspace: String) async throws -> [(seq: Int64, created: Date, rolledUp: Date?)] {
        var all: [(seq: Int64, created: Date, rolledUp: Date?)] = []
        for physical in server.cluster.servers {
            all += try await physical.run { connection in
                var rows: [(seq: Int64, created: Date, rolledUp: Date?)] = []
                for try await (seq, created, rolledUp) in try await connection.query(
                    "SELECT seq, created_at, rolled_up_at FROM runs WHERE workspace_id = \(workspace) AND seq IS NOT NULL",
                    logger: Self.logger
                ).decode((Int64, Date, Date?).self) {
                    rows.append((seq, created, rolledUp))
                }
                return rows
            }
        }
        return all.sorted { $0.seq < $1.seq }
    }
}
