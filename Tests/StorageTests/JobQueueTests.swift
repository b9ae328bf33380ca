import Domains
import Foundation
import KaizenTestSupport
import Logging
import PostgresNIO
import Testing

@testable import Storage

/// How the queue hands out roll-ups: a project's oldest first, a bounded number per project per claim,
/// none of the projects a worker already holds enough of — so one project's backlog leaves room for
/// the others.
@Suite struct JobQueueTests {
    @Test func claimsAFewOfEachProjectOldestFirstAndSkipsSaturatedLanes() async throws {
        try await withCluster { _, servers in
            let server = servers[1]
            let queue = JobQueue(server: server, logger: testLogger)
            // Project A has a backlog of 6 runs, B and C one each; the jobs are enqueued oldest first.
            var order: [String: [String]] = [:]
            for (project, runs) in [("A", 6), ("B", 1), ("C", 1)] {
                for n in 0..<runs {
                    let runID = "run-\(project)\(n)"
                    order[project, default: []].append(runID)
                    try await server.transaction { connection in
                        try await JobQueue.enqueue(
                            workspaceID: "ws1", kind: JobQueue.rollupKind,
                            payload: JobQueue.rollUpPayload(runID: runID, projectID: project), on: connection, logger: testLogger)
                    }
                }
            }
            // An older job without a project in its payload is a lane of its own.
            try await server.transaction { connection in
                try await JobQueue.enqueue(
                    workspaceID: "ws1", kind: JobQueue.rollupKind, payload: #"{"runId":"legacy"}"#, on: connection, logger: testLogger)
            }
            func runs(_ jobs: [JobRecord]) -> [String] {
                jobs.map { job in
                    let payload = try? JSONSerialization.jsonObject(with: Data(job.payload.utf8)) as? [String: String]
                    return payload?["runId"] ?? "?"
                }
            }

            let first = try await queue.claim(limit: 16, perProject: 2, worker: "w", lease: .seconds(30))
            // A's two oldest, B's, C's and the legacy job: A's backlog does not crowd the others out.
            #expect(Set(runs(first)) == ["run-A0", "run-A1", "run-B0", "run-C0", "legacy"])
            #expect(first.map { JobQueue.laneKey(payload: $0.payload) }.filter { $0 == "A" }.count == 2)

            // While the worker holds enough of A, A stays in the queue for other workers.
            #expect(try await queue.claim(limit: 16, perProject: 2, excludingLanes: ["ws1/A"], worker: "w", lease: .seconds(30)).isEmpty)
            // Otherwise A's next two, in order.
            let next = try await queue.claim(limit: 16, perProject: 2, worker: "w", lease: .seconds(30))
            #expect(runs(next) .sorted() == ["run-A2", "run-A3"])
        }
    }
}
